"""Retention crypto-shreds what is due, keeps legal holds and minors, and leaves no PHI."""

from __future__ import annotations

import io
from datetime import date

from django.core.management import call_command

from audit.models import AccessEvent
from portal import retention, vault
from portal.models import Instance, Patient, RetentionPolicy, StoredObject, Study
from sharing.models import ShareLink
from sharing.services import issue_link
from tests.base import BaseTestCase, make_ct_study

TODAY = date(2040, 1, 1)


class RetentionTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        RetentionPolicy.objects.create(
            practice=self.practice, name="Adults", retain_years=10, minors_until_age=21
        )

    def test_it_shreds_a_study_past_its_schedule(self) -> None:
        blobs = [i.blob for i in Instance.objects.filter(series__study=self.study)]
        issue_link(study=self.study, created_by=self.bob, recipient_kind="patient")
        report = retention.enforce(TODAY)
        self.assertEqual((report.studies, report.objects), (1, 2))
        self.assertFalse(Study.objects.filter(pk=self.study.pk).exists())
        self.assertFalse(ShareLink.objects.exists())
        for blob in blobs:
            blob.refresh_from_db()
            self.assertIsNone(blob.wrapped_key)
            with self.assertRaises(vault.VaultIntegrityError):
                vault.read_bytes(blob)

    def test_it_leaves_an_audit_trail_but_no_phi(self) -> None:
        retention.enforce(TODAY)
        event = AccessEvent.objects.get(action="shred")
        self.assertEqual(event.patient_id, self.pat.pk)
        self.pat.refresh_from_db()
        self.assertNotIn("Pat", self.pat.name)
        self.assertIsNone(self.pat.birth_date)
        self.assertNotEqual(self.pat.patient_id, "P-1001")

    def test_it_keeps_a_study_on_legal_hold(self) -> None:
        Study.objects.filter(pk=self.study.pk).update(legal_hold=True)
        self.assertEqual(retention.enforce(TODAY).studies, 0)
        self.assertTrue(Study.objects.filter(pk=self.study.pk).exists())

    def test_it_keeps_a_study_not_yet_due(self) -> None:
        self.assertEqual(retention.enforce(date(2030, 1, 1)).studies, 0)

    def test_it_keeps_a_minor_until_the_set_age(self) -> None:
        child = Patient.objects.create(
            practice=self.practice,
            patient_id="C-1",
            name="Kid Example",
            birth_date=date(2025, 1, 1),
        )
        make_ct_study(child, n=1, uid_root="1.2.826.0.1.3680043.8.498.2")
        due = {s.patient_id for s in retention.due_studies(TODAY)}
        self.assertNotIn(child.pk, due)
        self.assertIn(self.pat.pk, due)

    def test_it_ignores_other_practices_policies(self) -> None:
        RetentionPolicy.objects.all().delete()
        RetentionPolicy.objects.create(practice=self.practice_b, name="B", retain_years=1)
        self.assertEqual(retention.enforce(TODAY).studies, 0)

    def test_it_is_safe_to_run_twice(self) -> None:
        retention.enforce(TODAY)
        self.assertEqual(retention.enforce(TODAY).studies, 0)
        self.assertEqual(StoredObject.objects.filter(wrapped_key__isnull=False).count(), 0)

    def test_the_command_reports(self) -> None:
        out = io.StringIO()
        call_command("enforce_retention", "--dry-run", stdout=out)
        self.assertIn("0 studies", out.getvalue())
