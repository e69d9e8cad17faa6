"""Retention by rule, reviewed by an admin, then crypto-shredded; legal holds and erasure."""

from __future__ import annotations

import io
import shutil
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from audit.models import AccessEvent
from portal import vault
from portal.compliance import retention, rules
from portal.models import (
    ComplianceSettings,
    Instance,
    LegalHold,
    Patient,
    Purge,
    RetentionPolicy,
    StoredObject,
    Study,
)
from sharing.models import ShareLink
from sharing.services import issue_link
from tests.base import BaseTestCase, make_ct_study

TODAY = date(2040, 1, 1)


class RetentionTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.policy = RetentionPolicy.objects.create(
            practice=self.practice, name="Adults", retain_years=10, years_after_majority=3
        )

    def _approve_all(self) -> None:
        retention.approve(Purge.objects.filter(status="pending"), by=self.alice)

    @pytest.mark.hipaa("164.312(a)(2)(iv)")
    def test_it_shreds_a_study_once_approved(self) -> None:
        blobs = [i.blob for i in Instance.objects.filter(series__study=self.study)]
        issue_link(study=self.study, created_by=self.alice, recipient_kind="patient")
        report = retention.enforce(TODAY)
        self.assertEqual((report.proposed, report.studies), (1, 0))
        self.assertTrue(Study.objects.filter(pk=self.study.pk).exists())
        self._approve_all()
        report = retention.enforce(TODAY)
        self.assertEqual((report.proposed, report.studies, report.objects), (0, 1, 2))
        self.assertFalse(Study.objects.filter(pk=self.study.pk).exists())
        self.assertFalse(ShareLink.objects.exists())
        for blob in blobs:
            blob.refresh_from_db()
            self.assertIsNone(blob.wrapped_key)
            with self.assertRaises(vault.VaultIntegrityError):
                vault.read_bytes(blob)

    def test_a_practice_may_purge_automatically(self) -> None:
        ComplianceSettings.objects.create(practice=self.practice, auto_purge=True)
        self.assertEqual(retention.enforce(TODAY).studies, 1)
        self.assertFalse(Study.objects.filter(pk=self.study.pk).exists())

    def test_restored_files_stay_unreadable(self) -> None:
        """Copying the ciphertext back from an old backup does not bring the study back."""
        blob = Instance.objects.filter(series__study=self.study).first().blob
        root = Path(settings.STORAGES["vault"]["OPTIONS"]["location"])
        backup = root.parent / "old-backup"
        shutil.copy(root / blob.storage_name, backup)
        ComplianceSettings.objects.create(practice=self.practice, auto_purge=True)
        retention.enforce(TODAY)
        shutil.copy(backup, root / blob.storage_name)
        blob.refresh_from_db()
        with self.assertRaises(vault.VaultIntegrityError):
            vault.read_bytes(blob)

    def test_it_leaves_a_phi_free_trail(self) -> None:
        study_code = self.study.code
        retention.enforce(TODAY)
        self._approve_all()
        retention.enforce(TODAY)
        purge = Purge.objects.get()
        self.assertEqual(
            (purge.status, purge.record_code, purge.approved_by), ("done", study_code, self.alice)
        )
        self.assertEqual((purge.objects_shredded, purge.rule), (2, "Adults"))
        event = AccessEvent.objects.get(action="shred")
        self.assertEqual(event.patient_id, self.pat.pk)
        self.pat.refresh_from_db()
        self.assertNotIn("Pat", self.pat.name)
        self.assertIsNone(self.pat.birth_date)
        self.assertNotEqual(self.pat.patient_id, "P-1001")

    def test_it_keeps_a_study_on_legal_hold(self) -> None:
        Study.objects.filter(pk=self.study.pk).update(legal_hold=True)
        self.assertEqual(retention.enforce(TODAY).proposed, 0)

    def test_a_hold_set_after_approval_still_keeps_the_study(self) -> None:
        retention.enforce(TODAY)
        self._approve_all()
        LegalHold.objects.create(
            practice=self.practice, patient=self.pat, reason="Litigation", set_by=self.alice
        )
        self.assertEqual(retention.enforce(TODAY).studies, 0)
        self.assertEqual(Purge.objects.get().status, "held")
        self.assertTrue(Study.objects.filter(pk=self.study.pk).exists())

    def test_a_released_hold_keeps_nothing(self) -> None:
        LegalHold.objects.create(
            practice=self.practice, patient=self.pat, study=self.study, reason="Audit",
            set_by=self.alice, released_at=timezone.now(),
        )  # fmt: skip
        self.assertEqual(retention.enforce(TODAY).proposed, 1)

    def test_it_keeps_a_study_not_yet_due(self) -> None:
        self.assertEqual(retention.enforce(date(2030, 1, 1)).proposed, 0)

    def test_it_counts_from_the_last_visit_when_the_policy_says_so(self) -> None:
        self.policy.count_from = RetentionPolicy.CountFrom.LAST_VISIT
        self.policy.save()
        Patient.objects.filter(pk=self.pat.pk).update(last_visit=date(2035, 6, 1))
        self.assertEqual(retention.enforce(TODAY).proposed, 0)
        self.assertEqual(len(rules.due_records(date(2045, 6, 1))), 1)

    def test_it_keeps_a_minor_until_majority_plus_the_set_years(self) -> None:
        """A child scanned at 1 is kept until 18 + 3 = 21, past the 10 adult years."""
        child = Patient.objects.create(
            practice=self.practice, patient_id="C-1", name="Kid Example",
            birth_date=date(2025, 3, 1),
        )  # fmt: skip
        make_ct_study(child, n=1, uid_root="1.2.826.0.1.3680043.8.498.2")
        due = {d.patient.pk: d.due_on for d in rules.due_records(date(2060, 1, 1))}
        self.assertEqual(due[child.pk], date(2046, 3, 1))
        self.assertEqual(due[self.pat.pk], date(2036, 3, 4))
        self.assertNotIn(child.pk, {d.patient.pk for d in rules.due_records(TODAY)})

    def test_it_ignores_other_practices_policies(self) -> None:
        RetentionPolicy.objects.all().delete()
        RetentionPolicy.objects.create(practice=self.practice_b, name="B", retain_years=1)
        self.assertEqual(retention.enforce(TODAY).proposed, 0)

    def test_it_is_safe_to_run_twice(self) -> None:
        ComplianceSettings.objects.create(practice=self.practice, auto_purge=True)
        retention.enforce(TODAY)
        self.assertEqual(retention.enforce(TODAY).studies, 0)
        self.assertEqual(StoredObject.objects.filter(wrapped_key__isnull=False).count(), 0)

    def test_the_command_reports(self) -> None:
        out = io.StringIO()
        call_command("enforce_retention", "--dry-run", stdout=out)
        self.assertIn("0 records are past their retention schedule", out.getvalue())


class ErasureTestCase(BaseTestCase):
    def test_an_approved_erasure_removes_every_record_of_the_patient(self) -> None:
        purge = retention.request_erasure(self.pat, by=self.alice, reason="Patient's request")
        self.assertEqual(retention.execute(), (0, 0, 0))
        retention.approve([purge], by=self.alice)
        self.assertEqual(retention.execute(), (1, 2, 0))
        self.assertFalse(Study.objects.filter(patient=self.pat).exists())
        self.pat.refresh_from_db()
        self.assertEqual(self.pat.name, "Removed by retention")
        self.assertEqual(AccessEvent.objects.get(action="shred").detail["reason"], "erasure")

    def test_a_legal_hold_stops_an_erasure(self) -> None:
        LegalHold.objects.create(
            practice=self.practice, patient=self.pat, study=self.study, reason="Subpoena",
            set_by=self.alice,
        )  # fmt: skip
        purge = retention.request_erasure(self.pat, by=self.alice, reason="Patient's request")
        retention.approve([purge], by=self.alice)
        self.assertEqual(retention.execute(), (0, 0, 0))
        purge.refresh_from_db()
        self.assertEqual(purge.status, "held")
        self.assertTrue(Study.objects.filter(pk=self.study.pk).exists())
