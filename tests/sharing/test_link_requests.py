"""From an expired or used-up link the recipient asks the front desk for a new one."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

from django.utils import timezone

from audit.models import AccessEvent, Action
from sharing import throttle
from sharing.models import LinkRequest
from tests.sharing.helpers import ShareTestCase
from tests.sharing.test_verify_recipient import Clock


class LinkRequestTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.clock = Clock()
        patcher = mock.patch.object(throttle, "_now", self.clock)
        patcher.start()
        self.addCleanup(patcher.stop)

    def expire(self) -> None:
        self.share.expires_at = timezone.now() - timedelta(minutes=1)
        self.share.save()

    def test_the_expired_page_puts_a_request_in_the_front_desks_list(self) -> None:
        self.expire()
        self.assertContains(self.open_link(), "Ask for a new link", status_code=410)
        r = self.client.post("/s/request/")
        self.assertContains(r, "Your request is with the practice")
        request = LinkRequest.objects.get()
        self.assertEqual((request.share, request.reason), (self.share, "expired"))
        self.assertIsNone(request.handled_at)
        event = AccessEvent.objects.get(action=Action.SHARE_REQUEST)
        self.assertEqual((event.share_code, event.detail), (self.share.code, {"reason": "expired"}))
        self.login(self.bob)
        page = self.client.get("/shares/")
        self.assertContains(page, "Asked for a new link")
        self.assertContains(page, "Pat Example")

    def test_a_second_request_is_not_added(self) -> None:
        self.expire()
        self.open_link()
        self.client.post("/s/request/")
        self.clock.tick(60)
        self.assertContains(self.client.post("/s/request/"), "already with the practice")
        self.assertEqual(LinkRequest.objects.count(), 1)

    def test_a_used_up_link_can_ask_too(self) -> None:
        self.sign_in()
        self.share.max_downloads = 1
        self.share.download_count = 1
        self.share.save()
        self.client.post("/s/request/")
        self.assertEqual(LinkRequest.objects.get().reason, "used_up")

    def test_a_link_that_still_works_cannot_ask(self) -> None:
        self.open_link()
        self.assertEqual(self.client.post("/s/request/").status_code, 404)
        self.assertFalse(LinkRequest.objects.exists())

    def test_requests_are_throttled_like_verification(self) -> None:
        for _ in range(11):
            self.open_link(self.issue(expires_in_days=1))
            self.clock.tick(60)
            with mock.patch("sharing.link_requests.reason_for_new_link", return_value="expired"):
                self.client.post("/s/request/")
        self.expire()
        self.open_link()
        self.clock.tick(60)
        self.assertEqual(self.client.post("/s/request/").status_code, 429)

    def test_it_needs_a_post(self) -> None:
        self.expire()
        self.open_link()
        self.assertEqual(self.client.get("/s/request/").status_code, 405)

    def test_issuing_a_new_link_settles_the_request(self) -> None:
        self.expire()
        self.open_link()
        self.client.post("/s/request/")
        self.issue()
        self.assertIsNotNone(LinkRequest.objects.get().handled_at)
