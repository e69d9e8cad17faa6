from __future__ import annotations

from datetime import timedelta
from unittest import mock

from django.test import override_settings
from django.utils import timezone

from sharing import session
from sharing.services import revoke_link
from sharing.session import SEEN_KEY, SESSION_KEY, VERIFIED_KEY
from tests.sharing.helpers import ShareTestCase


class RecipientSessionTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.sign_in()

    def later(self, **delta):
        return mock.patch.object(session, "_now", return_value=timezone.now() + timedelta(**delta))

    def test_home_works_while_verified(self) -> None:
        self.assertEqual(self.client.get("/s/home/").status_code, 200)

    def assert_sent_back_to_the_link_page(self, status: int) -> None:
        """The verification is gone; the link page explains what happened."""
        home = self.client.get("/s/home/")
        self.assertEqual(home.status_code, 303)
        self.assertEqual(home["Location"], "/s/")
        self.assertNotIn(VERIFIED_KEY, self.client.session)
        self.assertIn(SESSION_KEY, self.client.session)
        page = self.client.get("/s/")
        self.assertEqual(page.status_code, status)
        self.assertNotContains(page, "Pat Example", status_code=status)
        return page

    def test_the_viewer_asks_whether_the_session_holds_without_a_view_recorded(self) -> None:
        # It asked the recipient's page, which recorded a view of the study each time.
        from audit.models import AccessEvent

        before = AccessEvent.objects.count()
        self.assertEqual(self.client.get("/viewer/session/?as=share").status_code, 204)
        self.assertEqual(AccessEvent.objects.count(), before)
        self.login(self.alice)  # staff in the same browser answer for themselves only
        self.assertEqual(self.client.get("/viewer/session/?as=staff").status_code, 204)
        revoke_link(self.share, by=self.alice)
        self.assertEqual(self.client.get("/viewer/session/?as=share").status_code, 401)
        self.assertEqual(self.client.get("/s/").status_code, 410)  # where the viewer goes

    def test_revoke_ends_an_open_session_at_its_next_request(self) -> None:
        revoke_link(self.share, by=self.alice)
        r = self.client.get("/s/download/share.zip")
        self.assertEqual(r.status_code, 404)
        page = self.assert_sent_back_to_the_link_page(410)
        self.assertContains(page, self.practice.name, status_code=410)

    def test_expiry_ends_the_session(self) -> None:
        self.share.expires_at = timezone.now() - timedelta(seconds=1)
        self.share.save()
        r = self.client.get(f"/viewer/studies/{self.study.code}/")
        self.assertEqual(r.status_code, 302)
        self.assertEqual(r["Location"], "/s/")
        self.assert_sent_back_to_the_link_page(410)

    def test_lock_ends_the_session(self) -> None:
        self.share.locked_at = timezone.now()
        self.share.save()
        self.assert_sent_back_to_the_link_page(423)

    @override_settings(RECIPIENT_IDLE_TIMEOUT_MINUTES=10)
    def test_idle_timeout_asks_for_the_password_again(self) -> None:
        with self.later(minutes=9):
            self.assertEqual(self.client.get("/s/home/").status_code, 200)
        with self.later(minutes=20):
            viewer = self.client.get(f"/viewer/studies/{self.study.code}/")
            self.assertEqual((viewer.status_code, viewer["Location"]), (302, "/s/"))
            page = self.assert_sent_back_to_the_link_page(200)
            self.assertContains(page, 'name="password"')

    @override_settings(RECIPIENT_ABSOLUTE_SESSION_HOURS=2)
    def test_absolute_timeout_despite_activity(self) -> None:
        for minutes in range(5, 120, 8):
            with self.later(minutes=minutes):
                self.assertEqual(self.client.get("/s/home/").status_code, 200)
        with self.later(minutes=122):
            self.assert_sent_back_to_the_link_page(200)

    def test_session_is_bound_to_one_link(self) -> None:
        other = self.issue()
        self.open_link(other)  # opening another link drops the verified one
        self.assertNotIn(VERIFIED_KEY, self.client.session)
        self.assertEqual(self.client.get("/s/home/").status_code, 303)

    def test_end_forgets_the_share(self) -> None:
        r = self.client.post("/s/end/")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(self.client.get("/s/home/").status_code, 404)


class RecipientActivityStampTestCase(ShareTestCase):
    """The recipient's last-seen stamp is written at most every SEEN_RESOLUTION_SECONDS."""

    def setUp(self) -> None:
        super().setUp()
        self.sign_in()
        self.url = f"/viewer/series/{self.study.series.get().code}/axial/0.jpg"

    def later(self, seconds: float):
        return mock.patch.object(
            session, "_now", return_value=timezone.now() + timedelta(seconds=seconds)
        )

    def test_it_skips_the_session_write_within_the_resolution(self) -> None:
        stamp = self.client.session[SEEN_KEY]
        with self.later(session.SEEN_RESOLUTION_SECONDS - 5):
            self.assertEqual(self.client.get(self.url).status_code, 200)
        self.assertEqual(self.client.session[SEEN_KEY], stamp)
        with self.later(session.SEEN_RESOLUTION_SECONDS + 5):
            self.assertEqual(self.client.get(self.url).status_code, 200)
        self.assertGreater(self.client.session[SEEN_KEY], stamp)

    @override_settings(RECIPIENT_IDLE_TIMEOUT_MINUTES=10)
    def test_steady_activity_keeps_the_session_past_the_idle_limit(self) -> None:
        step = session.SEEN_RESOLUTION_SECONDS * 0.8
        for n in range(1, int(11 * 60 / step) + 1):
            with self.later(n * step):
                self.assertEqual(self.client.get(self.url).status_code, 200, n)
