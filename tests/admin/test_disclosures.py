"""The accounting of disclosures of one patient (HIPAA 164.528): page, CSV, outside ones."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone

import audit
from audit.models import AccessEvent, Action
from portal.models import Disclosure
from sharing.services import issue_link
from tests.base import BaseTestCase


class DisclosuresTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice.is_staff = True
        self.alice.save()
        self.share = issue_link(
            study=self.study, created_by=self.alice, recipient_kind="referrer",
            recipient_email="dr.root@example.org", recipient_name="Dr Root",
        ).share  # fmt: skip
        request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.4")
        audit.record(Action.SHARE_OPEN, request=request, share=self.share)
        audit.record(Action.DOWNLOAD, request=request, share=self.share, detail={"phase": "start"})
        audit.record(Action.DOWNLOAD, request=request, share=self.share, detail={"phase": "end"})
        self.url = f"/admin/portal/patient/{self.pat.pk}/disclosures/"

    @pytest.mark.hipaa("164.528")
    def test_it_lists_each_share_with_its_uses(self) -> None:
        self.login(self.alice)
        r = self.client.get(self.url)
        self.assertContains(r, "Referring clinician Dr Root &lt;dr.root@example.org&gt;")
        self.assertContains(r, "Referral for your care")
        self.assertContains(r, "CBCT maxilla of 4 March 2026: the whole study")
        self.assertContains(r, "opened the link (from 198.51.100.4)")
        self.assertContains(r, "downloaded a copy", count=1)
        self.assertContains(r, "data-print")

    @pytest.mark.hipaa("164.528")
    def test_disclosures_outside_the_portal_complete_the_account(self) -> None:
        self.login(self.alice)
        r = self.client.post(
            "/admin/portal/disclosure/add/",
            {
                "patient": self.pat.pk, "disclosed_on": "2026-05-02", "recipient": "County court",
                "what": "CD with the CBCT", "purpose": "Subpoena", "medium": "cd",
            },
        )  # fmt: skip
        self.assertEqual(r.status_code, 302)
        self.assertEqual(Disclosure.objects.get().recorded_by, self.alice)
        r = self.client.get(self.url + "?from=2026-01-01&format=csv")
        text = b"".join(r.streaming_content).decode()
        self.assertIn("County court,Subpoena,CD with the CBCT,CD or USB drive", text)
        self.assertIn("Dr Root", text)

    def test_the_period_goes_back_six_years_at_most(self) -> None:
        self.login(self.alice)
        r = self.client.get(self.url + "?from=2001-01-01")
        earliest = r.context["start"]
        self.assertGreater(earliest, timezone.localdate() - timedelta(days=6 * 366))
        r = self.client.get(self.url + f"?to={date(2001, 1, 1)}")
        self.assertContains(r, "Nothing was shared in this period")

    def test_reading_it_is_recorded_and_other_practices_get_404(self) -> None:
        self.login(self.alice)
        self.client.get(self.url)
        read = AccessEvent.objects.get(action=Action.ADMIN_VIEW, detail__page="disclosures")
        self.assertEqual(read.patient, self.pat)
        self.charlie.is_staff = True
        self.charlie.save()
        from portal.models import Role, StaffMember

        StaffMember.objects.filter(user=self.charlie).update(role=Role.ADMIN)
        self.login(self.charlie)
        self.assertEqual(self.client.get(self.url).status_code, 404)
