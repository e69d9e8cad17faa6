"""Passkeys around the ceremony (the ceremony itself runs in Chromium, tests/e2e)."""

from __future__ import annotations

from django_otp_webauthn.models import WebAuthnCredential

from audit.models import AccessEvent, Action, Outcome
from tests.base import BaseTestCase


def _passkey(user, name: str = "Phone") -> WebAuthnCredential:
    return WebAuthnCredential.objects.create(
        user=user, name=name, credential_id=name.encode(), public_key=b"key", confirmed=True
    )


class PasskeyTestCase(BaseTestCase):
    def test_the_second_step_offers_a_passkey_only_where_browsers_allow_one(self) -> None:
        _passkey(self.bob)
        self.client.force_login(self.bob)
        at_localhost = self.client.get("/login/verify/", headers={"host": "localhost:8000"})
        self.assertContains(at_localhost, 'id="passkey-verification-button"')
        self.assertContains(at_localhost, "/static/django_otp_webauthn/otp_webauthn_auth.js")
        at_ip = self.client.get("/login/verify/", headers={"host": "127.0.0.1:8000"})
        self.assertNotContains(at_ip, "passkey-verification-button")

    def test_no_passkey_no_offer(self) -> None:
        self.client.force_login(self.bob)
        r = self.client.get("/login/verify/", headers={"host": "localhost:8000"})
        self.assertNotContains(r, "passkey-verification-button")

    def test_a_password_alone_cannot_add_a_passkey(self) -> None:
        self.client.force_login(self.bob)
        r = self.client.post("/webauthn/registration/begin/", headers={"host": "localhost:8000"})
        self.assertEqual(r.status_code, 403)
        self.assertIn(r.json()["code"], {"user_not_verified", "not_signed_in"})
        self.login(self.bob)
        r = self.client.post("/webauthn/registration/begin/", headers={"host": "localhost:8000"})
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["rp"]["id"], "localhost")

    def test_nobody_signs_in_with_a_passkey_without_the_password(self) -> None:
        r = self.client.post("/webauthn/authentication/begin/")
        self.assertEqual(r.status_code, 403)
        self.assertEqual(r.json()["code"], "passwordless_login_disabled")

    def test_a_failed_passkey_sign_in_is_audited(self) -> None:
        self.client.force_login(self.bob)  # password step done, no second factor yet
        r = self.client.post("/webauthn/authentication/complete/", {"id": "forged"})
        self.assertEqual(r.status_code, 400)
        event = AccessEvent.objects.get(action=Action.SIGN_IN, outcome=Outcome.FAILED)
        self.assertEqual(event.user, self.bob)
        self.assertEqual(
            event.detail, {"step": "otp", "device": "passkey", "reason": "invalid_state"}
        )
        self.assertFalse(self.client.get("/").status_code == 200)

    def test_a_signed_in_session_cannot_restart_its_clock_with_a_passkey(self) -> None:
        self.login(self.bob)
        r = self.client.post("/webauthn/authentication/complete/", {})
        self.assertEqual(r.status_code, 409)
        self.assertEqual(r.json()["code"], "already_signed_in")
        self.assertTrue(
            AccessEvent.objects.filter(
                action=Action.SIGN_IN, outcome=Outcome.FAILED, detail__reason="already_signed_in"
            ).exists()
        )

    def test_members_remove_their_own_passkeys_only(self) -> None:
        mine, theirs = _passkey(self.bob, "Bob's phone"), _passkey(self.alice, "Alice's key")
        self.login(self.bob)
        page = self.client.get("/account/")
        self.assertContains(page, "Bob&#x27;s phone")
        self.assertNotContains(page, "Alice")
        self.assertEqual(
            self.client.post(f"/account/passkeys/{theirs.pk}/remove/").status_code, 404
        )
        self.assertTrue(WebAuthnCredential.objects.filter(pk=theirs.pk).exists())
        r = self.client.post(f"/account/passkeys/{mine.pk}/remove/")
        self.assertRedirects(r, "/account/", fetch_redirect_response=False)
        self.assertFalse(WebAuthnCredential.objects.filter(pk=mine.pk).exists())
        change = AccessEvent.objects.get(action=Action.STAFF_CHANGE)
        self.assertEqual((change.user, change.detail["change"]), (self.bob, "passkey removed"))
        self.assertTrue(
            AccessEvent.objects.filter(action=Action.ACCESS_DENIED, user=self.bob).exists()
        )

    def test_resetting_a_member_removes_their_passkeys(self) -> None:
        _passkey(self.bob)
        self.login(self.alice)
        self.client.post("/practice/staff/bob/reset-authenticator/")
        self.assertFalse(WebAuthnCredential.objects.filter(user=self.bob).exists())

    def test_the_account_page_says_where_passkeys_work(self) -> None:
        self.login(self.bob)
        r = self.client.get("/account/", headers={"host": "127.0.0.1:8000"})
        self.assertContains(r, "Passkeys work only at the portal")
        r = self.client.get("/account/", headers={"host": "localhost:8000"})
        self.assertContains(r, 'id="passkey-register-button"')
