"""Back-office changelists: every list showing patient data is a recorded read."""

from __future__ import annotations

import io

import pytest

from audit.models import AccessEvent, Action
from portal import vault
from portal.models import Attachment
from tests.base import BaseTestCase


class ChangelistReadsTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice.is_staff = True
        self.alice.save()

    @pytest.mark.hipaa("164.312(b)")
    def test_it_records_the_patient_list_as_a_read(self) -> None:
        """Names and birth dates on the patient list leave an access record naming the page."""
        self.login(self.alice)
        r = self.client.get("/admin/portal/patient/")
        self.assertContains(r, "Pat Example")
        event = AccessEvent.objects.get(action=Action.ADMIN_VIEW)
        self.assertEqual((event.user, event.patient), (self.alice, self.pat))
        self.assertEqual(event.detail, {"page": "list", "list": "portal.patient"})

    def test_it_records_every_changelist_with_patient_data(self) -> None:
        from sharing.services import issue_link

        Attachment.objects.create(
            practice=self.practice,
            patient=self.pat,
            kind=Attachment.Kind.PDF,
            content_type="application/pdf",
            blob=vault.store(io.BytesIO(b"%PDF-1.4 report")),
        )
        issue_link(study=self.study, created_by=self.alice, recipient_kind="patient")
        self.login(self.alice)
        for url in (
            "/admin/portal/patient/",
            "/admin/portal/study/",
            "/admin/portal/series/",
            "/admin/portal/instance/",
            "/admin/portal/attachment/",
            "/admin/sharing/sharelink/",
            "/admin/audit/accessevent/",
        ):
            with self.subTest(url=url):
                reads = AccessEvent.objects.filter(action=Action.ADMIN_VIEW, patient=self.pat)
                before = reads.count()
                r = self.client.get(url)
                self.assertEqual(r.status_code, 200)
                self.assertEqual(reads.count(), before + 1)


class OtherPracticesUnnamedTestCase(BaseTestCase):
    def test_a_practice_admin_sees_no_other_practices_name_in_any_list(self) -> None:
        from django.contrib import admin

        from portal.admin.scope import PracticeScopedAdmin

        self.alice.is_staff = True
        self.alice.save()
        self.login(self.alice)
        other = self.practice_b.name
        scoped = [
            (model, model_admin)
            for model, model_admin in admin.site._registry.items()
            if isinstance(model_admin, PracticeScopedAdmin)
        ]
        self.assertGreater(len(scoped), 10)
        for model, _ in scoped:
            url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
            with self.subTest(url=url):
                r = self.client.get(url)
                self.assertEqual(r.status_code, 200)
                self.assertNotContains(r, other)


class EmergencyAccessTestCase(BaseTestCase):
    @pytest.mark.hipaa("164.312(a)(2)(ii)")
    def test_an_operator_opens_any_practice_and_the_read_is_recorded(self) -> None:
        """A superuser (two factors, like everyone) reaches another practice's patient."""
        self.charlie.is_staff = self.charlie.is_superuser = True
        self.charlie.save()
        self.login(self.charlie)
        r = self.client.get(f"/admin/portal/patient/{self.pat.pk}/change/")
        self.assertContains(r, "Pat Example")
        event = AccessEvent.objects.get(action=Action.ADMIN_VIEW)
        self.assertEqual((event.user, event.patient), (self.charlie, self.pat))


class PracticeChangelistTestCase(BaseTestCase):
    def test_a_practice_admin_opens_the_practice_list(self) -> None:
        """A practice admin sees their own practice, not a server error, and not the others."""
        self.alice.is_staff = True
        self.alice.save()
        self.login(self.alice)
        r = self.client.get("/admin/portal/practice/")
        self.assertContains(r, "Smile Dental")
        self.assertNotContains(r, "Other Dental")


class AutocompleteReadsTestCase(BaseTestCase):
    """The back office's patient pickers name patients: each one named is a recorded read."""

    def test_an_autocomplete_of_patients_records_a_read_of_each_patient_it_names(self) -> None:
        from audit.models import AccessEvent, Action

        self.alice.is_staff = True
        self.alice.save()
        self.login(self.alice)
        r = self.client.get(
            "/admin/autocomplete/",
            {"app_label": "portal", "model_name": "legalhold", "field_name": "patient",
             "term": "Pat"},
        )  # fmt: skip
        self.assertEqual(r.status_code, 200)
        self.assertEqual([row["text"] for row in r.json()["results"]], [str(self.pat)])
        reads = AccessEvent.objects.filter(action=Action.ADMIN_VIEW, detail__page="autocomplete")
        self.assertEqual([(e.patient, e.user) for e in reads], [(self.pat, self.alice)])
