"""The staff menu counts what waits for the front desk: link requests, files sent in."""

from __future__ import annotations

from django.utils import timezone

from sharing.models import LinkRequest, ReceivedFile, ShareLink
from sharing.services import issue_link
from sharing.uploads.services import issue_upload_link
from tests.base import BaseTestCase


class WaitingCountsTestCase(BaseTestCase):
    def share_link(self) -> ShareLink:
        return issue_link(
            study=self.study, created_by=self.alice, recipient_kind=ShareLink.Recipient.PATIENT
        ).share

    def test_the_menu_counts_requests_for_a_new_link_and_files_waiting(self) -> None:
        # A patient was told "the front desk will see your request"; nothing on the menu said so.
        self.login(self.bob)
        page = self.client.get("/").content.decode()
        self.assertNotIn('class="badge"', page)
        share = self.share_link()
        LinkRequest.objects.create(share=share, reason="expired", created_at=timezone.now())
        link = issue_upload_link(patient=self.pat, created_by=self.alice, password="y" * 20).link
        for name in ("a.dcm", "b.dcm"):
            ReceivedFile.objects.create(link=link, name=name, state=ReceivedFile.State.PENDING)
        ReceivedFile.objects.create(link=link, name="c.txt", state=ReceivedFile.State.REFUSED)
        page = self.client.get("/").content.decode()
        self.assertIn('1<span class="sr-only"> asked for a new link</span>', page)
        self.assertIn('2<span class="sr-only"> waiting</span>', page)

    def test_another_practice_sees_none_of_them(self) -> None:
        share = self.share_link()
        LinkRequest.objects.create(share=share, reason="expired", created_at=timezone.now())
        self.login(self.charlie)
        self.assertNotIn('class="badge"', self.client.get("/").content.decode())
