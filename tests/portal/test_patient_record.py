"""Correcting a patient's record: the birth date a patient link needs, hygienist assignment."""

from __future__ import annotations

from datetime import date
from unittest import mock

from django.core.exceptions import ValidationError

from audit.models import AccessEvent, Action
from portal.models import Patient, Role
from portal.workspace.views import studies
from sharing.models import ShareLink
from sharing.services import issue_link
from tests.base import BaseTestCase, make_staff


class PatientRecordTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.hy = make_staff("hy", self.practice, Role.HYGIENIST)
        self.url = f"/patients/{self.pat.code}/record/"

    def test_a_patient_without_birth_date_gets_no_patient_link_until_one_is_added(self) -> None:
        self.pat.birth_date = None
        self.pat.save()
        self.practice.front_desk_views_images = True  # so bob may share the images
        self.practice.save()
        self.login(self.bob)
        share_url = f"/studies/{self.study.code}/share/"
        r = self.client.post(share_url, {"recipient_kind": "patient", "expires_in_days": 7})
        self.assertContains(r, "none is on file for this patient", status_code=400)
        self.assertFalse(ShareLink.objects.exists())
        page = self.client.get(f"/patients/{self.pat.code}/")
        self.assertContains(page, "add it before issuing one")

        r = self.client.post(self.url, {"birth_date": "1975-02-03"})
        self.assertRedirects(r, f"/patients/{self.pat.code}/", fetch_redirect_response=False)
        self.pat.refresh_from_db()
        self.assertEqual(self.pat.birth_date, date(1975, 2, 3))
        event = AccessEvent.objects.filter(action=Action.PATIENT_CHANGE).get()
        self.assertEqual(
            (event.user, event.patient, event.detail["fields"]),
            (self.bob, self.pat, ["birth_date"]),
        )
        r = self.client.post(share_url, {"recipient_kind": "patient", "expires_in_days": 7})
        self.assertEqual(r.status_code, 200)
        self.assertEqual(ShareLink.objects.count(), 1)

    def test_a_referrer_link_needs_no_birth_date(self) -> None:
        self.pat.birth_date = None
        self.pat.save()
        self.login(self.alice)
        r = self.client.post(
            f"/studies/{self.study.code}/share/",
            {
                "recipient_kind": "referrer",
                "recipient_email": "dr@example.org",
                "expires_in_days": 7,
            },
        )
        self.assertEqual(r.status_code, 200)

    def test_it_refuses_impossible_dates_and_changes_nothing(self) -> None:
        self.login(self.alice)
        for value in ["1850-01-01", "2999-01-01", "not a date", ""]:
            with self.subTest(value=value):
                r = self.client.post(self.url, {"birth_date": value})
                self.assertEqual(r.status_code, 400)
        self.pat.refresh_from_db()
        self.assertEqual(self.pat.birth_date, date(1980, 5, 17))
        self.assertFalse(AccessEvent.objects.filter(action=Action.PATIENT_CHANGE).exists())

    def test_only_an_admin_corrects_a_birth_date_on_file_and_is_told_about_open_links(self) -> None:
        issue_link(study=self.study, created_by=self.alice, recipient_kind="patient")
        self.login(self.bob)
        page = self.client.get(f"/patients/{self.pat.code}/")
        self.assertContains(page, "Only a practice admin can correct")
        self.assertNotContains(page, "Save record")  # nothing here this member can change
        self.client.post(self.url, {"birth_date": "1999-09-09"})
        self.pat.refresh_from_db()
        self.assertEqual(self.pat.birth_date, date(1980, 5, 17))
        self.assertFalse(AccessEvent.objects.filter(action=Action.PATIENT_CHANGE).exists())

        self.login(self.alice)
        r = self.client.post(self.url, {"birth_date": "1980-07-15"}, follow=True)
        self.assertContains(r, "1 open patient link now asks for the corrected date of birth")
        self.pat.refresh_from_db()
        self.assertEqual(self.pat.birth_date, date(1980, 7, 15))

    def test_a_date_saved_by_someone_else_meanwhile_is_not_overwritten(self) -> None:
        self.pat.birth_date = None
        self.pat.save()
        self.login(self.bob)
        real_form = studies._record_form

        def form_then_other_member_saves(*args, **kwargs):
            form = real_form(*args, **kwargs)
            Patient.objects.filter(pk=self.pat.pk).update(birth_date=date(1975, 1, 1))
            return form

        with mock.patch.object(studies, "_record_form", form_then_other_member_saves):
            r = self.client.post(self.url, {"birth_date": "1999-09-09"})
        self.assertContains(r, "Someone else just saved a date of birth", status_code=409)
        self.pat.refresh_from_db()
        self.assertEqual(self.pat.birth_date, date(1975, 1, 1))

    def test_practice_admin_assigns_hygienists_who_then_see_the_patient(self) -> None:
        self.practice.hygienists_see_assigned_only = True
        self.practice.save()
        self.login(self.hy)
        self.assertEqual(self.client.get(f"/patients/{self.pat.code}/").status_code, 404)
        self.login(self.alice)
        page = self.client.get(f"/patients/{self.pat.code}/")
        self.assertContains(page, "Assigned hygienists")
        r = self.client.post(
            self.url, {"birth_date": "1980-05-17", "assigned_staff": [str(self.hy.pk)]}
        )
        self.assertEqual(r.status_code, 302)
        self.assertEqual(list(self.pat.assigned_staff.all()), [self.hy])
        self.login(self.hy)
        self.assertEqual(self.client.get(f"/patients/{self.pat.code}/").status_code, 200)

        self.login(self.alice)
        self.client.post(self.url, {"birth_date": "1980-05-17"})
        self.assertFalse(self.pat.assigned_staff.exists())
        changes = AccessEvent.objects.filter(action=Action.PATIENT_CHANGE)
        self.assertEqual([e.detail["fields"] for e in changes], [["assigned_staff"]] * 2)

    def test_only_admins_assign_and_only_hygienists_can_be_assigned(self) -> None:
        self.login(self.bob)
        self.assertNotContains(
            self.client.get(f"/patients/{self.pat.code}/"), "Assigned hygienists"
        )
        self.client.post(
            self.url, {"birth_date": "1980-05-17", "assigned_staff": [str(self.hy.pk)]}
        )
        self.assertFalse(self.pat.assigned_staff.exists())
        self.login(self.alice)
        r = self.client.post(
            self.url, {"birth_date": "1980-05-17", "assigned_staff": [str(self.bob.pk)]}
        )
        self.assertEqual(r.status_code, 400)
        self.assertFalse(self.pat.assigned_staff.exists())

    def test_another_practice_gets_404_and_a_denial_record(self) -> None:
        self.login(self.charlie)
        r = self.client.post(self.url, {"birth_date": "1999-01-01"})
        self.assertEqual(r.status_code, 404)
        self.pat.refresh_from_db()
        self.assertEqual(self.pat.birth_date, date(1980, 5, 17))
        self.assertTrue(
            AccessEvent.objects.filter(action=Action.ACCESS_DENIED, user=self.charlie).exists()
        )

    def test_the_service_refuses_a_patient_link_without_birth_date(self) -> None:
        self.pat.birth_date = None
        self.pat.save()
        with self.assertRaisesMessage(ValidationError, "date of birth"):
            issue_link(study=self.study, created_by=self.alice, recipient_kind="patient")
        self.assertFalse(ShareLink.objects.exists())
