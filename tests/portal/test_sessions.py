"""Idle and absolute staff timeouts, and deactivation ending sessions."""

from __future__ import annotations

from datetime import timedelta
from unittest.mock import patch

from django.contrib.sessions.models import Session
from django.utils import timezone

from audit.models import AccessEvent, Action
from portal.workspace.sessions import SEEN_AT, SEEN_RESOLUTION_SECONDS
from sharing.models import ShareLink
from sharing.services import issue_link
from tests.base import BaseTestCase


def later(minutes: float):
    """Patch the session clock to `minutes` from now."""
    return patch(
        "portal.workspace.sessions._now", return_value=timezone.now() + timedelta(minutes=minutes)
    )


class StaffSessionTimeoutTestCase(BaseTestCase):
    def test_it_signs_out_after_idle_minutes(self) -> None:
        self.login(self.bob)
        self.assertEqual(self.client.get("/").status_code, 200)
        with later(16):
            r = self.client.get("/shares/")
        self.assertRedirects(r, "/login/?next=/shares/", fetch_redirect_response=False)
        self.assertFalse(r.wsgi_request.user.is_authenticated)
        event = AccessEvent.objects.get(action=Action.SIGN_OUT)
        self.assertEqual(event.detail["reason"], "idle")

    def test_it_uses_a_shorter_practice_idle_setting(self) -> None:
        self.practice.idle_timeout_minutes = 5
        self.practice.save()
        self.login(self.bob)
        self.client.get("/")
        with later(4):
            self.assertEqual(self.client.get("/").status_code, 200)
        with later(10):
            self.assertEqual(self.client.get("/").status_code, 302)

    def test_no_practice_setting_keeps_a_session_idle_past_fifteen_minutes(self) -> None:
        # The security rules cap idle logoff at 15 minutes; a value stored before that cap (or
        # written past the form) must not lengthen it.
        type(self.practice).objects.filter(pk=self.practice.pk).update(idle_timeout_minutes=60)
        self.login(self.bob)
        self.client.get("/")
        with later(16):
            r = self.client.get("/shares/")
        self.assertRedirects(r, "/login/?next=/shares/", fetch_redirect_response=False)

    def test_it_keeps_an_active_session_until_the_absolute_age(self) -> None:
        self.login(self.bob)
        self.client.get("/")
        for minutes in range(10, 12 * 60, 10):
            with later(minutes):
                self.assertEqual(self.client.get("/").status_code, 200, minutes)
        with later(12 * 60 + 5):
            r = self.client.get("/")
        self.assertEqual(r.status_code, 302)
        self.assertEqual(
            AccessEvent.objects.get(action=Action.SIGN_OUT).detail["reason"], "absolute"
        )

    def test_it_changes_nothing_when_a_form_arrives_after_expiry(self) -> None:
        self.login(self.bob)
        self.client.get(f"/studies/{self.study.code}/")
        with later(16):
            r = self.client.post(
                f"/studies/{self.study.code}/share/",
                {"recipient_kind": "patient", "expires_in_days": 7},
            )
        # After signing in again the browser goes back to the study page, not to a URL that
        # only answers POST (which would show a bare 405).
        self.assertRedirects(
            r, f"/login/?next=/studies/{self.study.code}/", fetch_redirect_response=False
        )
        self.assertFalse(ShareLink.objects.exists())
        r = self.client.get(r["Location"])
        self.assertContains(r, "signed out after a period of inactivity")

    def test_after_expiry_a_token_address_is_not_copied_into_the_sign_in_address(self) -> None:
        issued = issue_link(study=self.study, created_by=self.alice, recipient_kind="patient")
        self.login(self.alice)
        self.client.get("/")
        with later(16):
            r = self.client.get(issued.path)
        self.assertRedirects(r, "/login/?next=/", fetch_redirect_response=False)
        self.assertNotIn(issued.token, r["Location"])

    def test_after_expiry_no_token_address_is_copied_into_the_sign_in_address(self) -> None:
        secret = "S3cretTokenValue-abcdefghijklmnopqrstuv"
        for path in (f"/u/{secret}", f"/login/unlock/{secret}/", f"/s/{secret}"):
            with self.subTest(path=path):
                self.login(self.alice)
                self.client.get("/")
                with later(16):
                    r = self.client.get(path)
                self.assertRedirects(r, "/login/?next=/", fetch_redirect_response=False)

    def test_after_expiry_every_form_leads_back_to_a_page_that_exists(self) -> None:
        share = issue_link(study=self.study, created_by=self.alice, recipient_kind="patient").share
        cases = {
            f"/shares/{share.code}/revoke/": "/shares/",
            "/practice/staff/bob/role/": "/practice/staff/",
            f"/patients/{self.pat.code}/record/": f"/patients/{self.pat.code}/",
            "/upload/batches/": "/upload/",
        }
        for action, page in cases.items():
            with self.subTest(action=action):
                self.login(self.alice)
                self.client.get("/")
                with later(16):
                    r = self.client.post(action, {})
                self.assertRedirects(r, f"/login/?next={page}", fetch_redirect_response=False)
                self.login(self.alice)
                self.assertEqual(self.client.get(page).status_code, 200)
        share.refresh_from_db()
        self.assertIsNone(share.revoked_at)

    def test_it_ends_sessions_of_a_deactivated_user(self) -> None:
        self.login(self.bob)
        self.client.get("/")
        self.assertEqual(Session.objects.count(), 1)
        self.bob.is_active = False
        self.bob.save()
        self.assertEqual(Session.objects.count(), 0)
        self.assertEqual(self.client.get("/").status_code, 302)

    def test_it_answers_upload_requests_with_401_after_expiry(self) -> None:
        self.login(self.bob)
        self.client.get("/")
        with later(16):
            r = self.client.head(
                "/upload/tus/00000000-0000-0000-0000-000000000000",
                headers={"Tus-Resumable": "1.0.0"},
            )
        self.assertEqual(r.status_code, 401)


class StaffActivityStampTestCase(BaseTestCase):
    """The last-seen stamp is written at most every SEEN_RESOLUTION_SECONDS."""

    def seen(self) -> float:
        return self.client.session[SEEN_AT]

    def test_it_skips_the_session_write_within_the_resolution(self) -> None:
        self.login(self.alice)
        self.client.get("/robots.txt")
        stamp = self.seen()
        with later((SEEN_RESOLUTION_SECONDS - 5) / 60):
            self.client.get("/robots.txt")
        self.assertEqual(self.seen(), stamp)
        with later((SEEN_RESOLUTION_SECONDS + 5) / 60):
            self.client.get("/robots.txt")
        self.assertGreater(self.seen(), stamp)

    def test_steady_activity_keeps_the_session_past_the_idle_limit(self) -> None:
        self.login(self.alice)
        self.client.get("/robots.txt")
        step = SEEN_RESOLUTION_SECONDS * 0.8
        for n in range(1, int(16 * 60 / step) + 1):
            with later(n * step / 60):
                self.assertEqual(self.client.get("/robots.txt").status_code, 200, n)
        with later(16 * 60 / 60 + 0.1):
            self.assertEqual(self.client.get("/").status_code, 200)

    def test_idle_sign_out_comes_early_by_less_than_the_resolution_never_late(self) -> None:
        self.login(self.alice)
        self.client.get("/robots.txt")  # stamped at 0
        with later((SEEN_RESOLUTION_SECONDS - 1) / 60):
            self.client.get("/robots.txt")  # activity, not stamped
        with later(15 + (SEEN_RESOLUTION_SECONDS - 1) / 60 - 0.001):
            r = self.client.get("/")  # 15 min after the last activity at the latest
        self.assertEqual(r.status_code, 302)


class PerRequestLoadsTestCase(BaseTestCase):
    """Session, user and second factor are read on every request by portal's own loaders."""

    def test_an_expired_session_row_signs_out(self) -> None:
        self.login(self.bob)
        self.assertEqual(self.client.get("/").status_code, 200)
        Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
        r = self.client.get("/shares/")
        self.assertRedirects(r, "/login/?next=/shares/", fetch_redirect_response=False)

    def test_an_unknown_session_key_is_not_adopted(self) -> None:
        from django.conf import settings

        self.client.cookies[settings.SESSION_COOKIE_NAME] = "x" * 32
        r = self.client.get("/shares/")
        self.assertEqual(r.status_code, 302)
        self.assertFalse(r.wsgi_request.user.is_authenticated)
        self.assertNotEqual(r.wsgi_request.session.session_key, "x" * 32)

    def test_a_deactivated_user_is_signed_out_at_the_next_request(self) -> None:
        self.login(self.bob)
        self.assertEqual(self.client.get("/").status_code, 200)
        type(self.bob).objects.filter(pk=self.bob.pk).update(is_active=False)
        r = self.client.get("/shares/")
        self.assertEqual(r.status_code, 302)
        self.assertFalse(r.wsgi_request.user.is_authenticated)

    def test_a_deleted_authenticator_ends_the_second_factor(self) -> None:
        self.login(self.bob)
        self.assertEqual(self.client.get("/").status_code, 200)
        self.bob.totpdevice_set.all().delete()
        r = self.client.get("/shares/")
        self.assertEqual(r.status_code, 302)
        self.assertFalse(r.wsgi_request.user.is_verified())

    def test_a_forged_device_id_in_the_session_verifies_nothing(self) -> None:
        from django_otp import DEVICE_ID_SESSION_KEY

        self.login(self.bob)
        other = self.alice.totpdevice_set.get().persistent_id
        for forged in (other, "otp_totp.totpdevice/abc", "auth.user/1", "nonsense", "a.b/1"):
            with self.subTest(forged=forged):
                session = self.client.session
                session[DEVICE_ID_SESSION_KEY] = forged
                session.save()
                r = self.client.get("/shares/")
                self.assertEqual(r.status_code, 302)
                self.assertFalse(r.wsgi_request.user.is_verified())
