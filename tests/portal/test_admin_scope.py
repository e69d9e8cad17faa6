"""The back office shows a practice admin only their own practice, and audits the reads."""

from __future__ import annotations

from datetime import date

from audit.models import AccessEvent
from portal.models import Patient
from tests.base import BaseTestCase, make_ct_study


class AdminScopeTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice.is_staff = True
        self.alice.save()
        self.other = Patient.objects.create(
            practice=self.practice_b,
            patient_id="B-9",
            name="Bianca Other",
            birth_date=date(1990, 1, 1),
        )
        make_ct_study(self.other, n=1, uid_root="1.2.826.0.1.3680043.8.498.3")

    def test_it_lists_only_the_admins_practice(self) -> None:
        self.login(self.alice)
        r = self.client.get("/admin/portal/patient/")
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, "Pat Example")
        self.assertNotContains(r, "Bianca")

    def test_another_practices_patient_is_not_found(self) -> None:
        self.login(self.alice)
        r = self.client.get(f"/admin/portal/patient/{self.other.pk}/change/", follow=True)
        self.assertNotContains(r, "Bianca")

    def test_it_audits_a_patient_read(self) -> None:
        self.login(self.alice)
        r = self.client.get(f"/admin/portal/patient/{self.pat.pk}/change/")
        self.assertEqual(r.status_code, 200)
        event = AccessEvent.objects.get(action="admin_view")
        self.assertEqual((event.user, event.patient), (self.alice, self.pat))

    def test_access_history_is_scoped(self) -> None:
        self.login(self.alice)
        r = self.client.get("/admin/audit/accessevent/")
        self.assertEqual(r.status_code, 200)
        self.assertNotContains(r, "Bianca")

    def test_share_links_cannot_be_edited_here(self) -> None:
        from sharing.services import issue_link

        issued = issue_link(study=self.study, created_by=self.alice, recipient_kind="patient")
        self.login(self.alice)
        r = self.client.post(
            f"/admin/sharing/sharelink/{issued.share.pk}/change/", {"revoked_at": ""}
        )
        self.assertEqual(r.status_code, 403)

    def test_other_staff_get_no_back_office(self) -> None:
        self.bob.is_staff = True
        self.bob.save()
        self.login(self.bob)
        r = self.client.get("/admin/portal/patient/")
        self.assertIn(r.status_code, (302, 403))
        self.assertNotContains(r, "Pat Example", status_code=r.status_code)
