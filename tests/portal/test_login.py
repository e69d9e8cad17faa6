"""Staff sign-in: password, then TOTP; enrolment; backup codes; throttling; audit."""

from __future__ import annotations

import re
from unittest.mock import patch

from django.contrib.auth.models import User
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AccessEvent, Action, Outcome
from portal.models import BackupCodeDevice, Role, StaffMember
from portal.models import backup as backup_module
from tests.base import BaseTestCase


def code_for(device: TOTPDevice) -> str:
    """Return the code an authenticator app shows now for the device."""
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


class LoginTestCase(BaseTestCase):
    def _password(self, username: str = "bob") -> object:
        return self.client.post(
            "/login/", {"username": username, "password": "correct-horse-42", "next": "/shares/"}
        )

    def test_it_asks_for_the_code_after_the_password(self) -> None:
        r = self._password()
        self.assertRedirects(r, "/login/verify/?next=%2Fshares%2F", fetch_redirect_response=False)
        r = self.client.get("/")
        self.assertRedirects(r, "/login/?next=/", fetch_redirect_response=False)

    def test_it_signs_in_with_a_totp_code(self) -> None:
        self._password()
        key_after_password = self.client.session.session_key
        device = self.bob.totpdevice_set.get()
        r = self.client.post("/login/verify/", {"token": code_for(device), "next": "/shares/"})
        self.assertRedirects(r, "/shares/", fetch_redirect_response=False)
        self.assertNotEqual(self.client.session.session_key, key_after_password)
        self.assertEqual(self.client.get("/").status_code, 200)
        event = AccessEvent.objects.filter(action=Action.SIGN_IN, outcome=Outcome.OK).get()
        self.assertEqual(event.user, self.bob)

    def test_it_refuses_a_wrong_code(self) -> None:
        self._password()
        r = self.client.post("/login/verify/", {"token": "000000"})
        self.assertContains(r, "wrong or was already used")
        self.assertEqual(self.client.get("/").status_code, 302)
        self.assertTrue(
            AccessEvent.objects.filter(action=Action.SIGN_IN, outcome=Outcome.FAILED).exists()
        )

    def test_it_refuses_a_reused_code(self) -> None:
        self._password()
        device = self.bob.totpdevice_set.get()
        code = code_for(device)
        self.client.post("/login/verify/", {"token": code})
        self.client.post("/logout/")
        self._password()
        r = self.client.post("/login/verify/", {"token": code})
        self.assertContains(r, "wrong or was already used")
        self.assertEqual(self.client.get("/").status_code, 302)

    def test_it_audits_a_wrong_password(self) -> None:
        r = self.client.post("/login/", {"username": "bob", "password": "nope-nope-nope"})
        self.assertEqual(r.status_code, 200)
        self.assertFalse(r.wsgi_request.user.is_authenticated)
        event = AccessEvent.objects.get(action=Action.SIGN_IN)
        self.assertEqual((event.outcome, event.detail["step"]), (Outcome.FAILED, "password"))

    def test_it_locks_after_repeated_failures(self) -> None:
        for _ in range(5):
            self.client.post("/login/", {"username": "bob", "password": "wrong-wrong-1"})
        r = self._password()
        self.assertContains(r, "Too many failed sign-ins", status_code=429)
        self.assertTrue(AccessEvent.objects.filter(detail__locked=True).exists())

    def test_it_enrolls_at_first_sign_in(self) -> None:
        user = User.objects.create_user("dora", "d@example.org", "correct-horse-42")
        StaffMember.objects.create(user=user, practice=self.practice, role=Role.CLINICIAN)
        r = self._password("dora")
        self.assertRedirects(r, "/login/enroll/?next=%2Fshares%2F", fetch_redirect_response=False)
        r = self.client.get("/login/enroll/")
        self.assertContains(r, "<svg")
        device = TOTPDevice.objects.get(user=user, confirmed=False)
        r = self.client.post("/login/enroll/", {"token": code_for(device)})
        self.assertContains(r, "shown only once")
        codes = re.findall(r"<code>([A-Z0-9-]{20,})</code>", r.content.decode())
        self.assertEqual(len(codes), 10)
        backup = BackupCodeDevice.objects.get(user=user).codes.first()
        self.assertTrue(backup.secret_hash.startswith("md5$"))  # hashed, never stored plain
        self.assertFalse(any(c.replace("-", "")[4:] in backup.secret_hash for c in codes))
        self.assertEqual(self.client.get("/").status_code, 200)

    def test_it_accepts_a_backup_code_once(self) -> None:
        device = BackupCodeDevice.objects.create(user=self.bob, name="Backup codes")
        code = device.issue_codes(2)[0]
        self._password()
        r = self.client.post("/login/verify/", {"token": code.lower()})
        self.assertEqual(r.status_code, 302)
        self.client.post("/logout/")
        self._password()
        r = self.client.post("/login/verify/", {"token": code})
        self.assertContains(r, "wrong or was already used")

    def test_two_sign_ins_racing_with_one_backup_code_let_only_one_in(self) -> None:
        device = BackupCodeDevice.objects.create(user=self.bob, name="Backup codes")
        code = device.issue_codes(1)[0]
        real_check = backup_module.check_password

        def check_while_the_other_request_uses_it(raw: str, hashed: str) -> bool:
            ok = real_check(raw, hashed)
            device.codes.all().delete()  # the racing request deleted the row first
            return ok

        with patch.object(
            backup_module, "check_password", side_effect=check_while_the_other_request_uses_it
        ):
            self.assertFalse(device.verify_token(code))

    def test_it_sends_the_admin_through_staff_sign_in(self) -> None:
        self.alice.is_staff = self.alice.is_superuser = True
        self.alice.save()
        self.client.force_login(self.alice)
        r = self.client.get("/admin/")
        self.assertEqual(r.status_code, 302)
        self.assertIn("/login/", r["Location"])
        self.login(self.alice)
        self.assertEqual(self.client.get("/admin/").status_code, 200)
        self.login(self.bob)
        self.assertEqual(self.client.get("/admin/", follow=True).status_code, 403)

    def test_it_refuses_a_verified_account_without_a_practice(self) -> None:
        self.bob.staffmember.delete()
        self.login(self.bob)
        self.assertEqual(self.client.get("/").status_code, 403)

    def test_it_logs_out_by_post_only(self) -> None:
        self.login(self.bob)
        self.assertEqual(self.client.get("/logout/").status_code, 405)
        self.client.post("/logout/")
        self.assertEqual(self.client.get("/").status_code, 302)
        self.assertTrue(AccessEvent.objects.filter(action=Action.SIGN_OUT).exists())


class OpenRedirectTestCase(BaseTestCase):
    def test_it_ignores_a_foreign_next(self) -> None:
        self.client.post("/login/", {"username": "bob", "password": "correct-horse-42"})
        code = code_for(self.bob.totpdevice_set.get())
        r = self.client.post("/login/verify/", {"token": code, "next": "https://evil.example/"})
        self.assertRedirects(r, "/", fetch_redirect_response=False)


class BackupCodeDeviceTestCase(BaseTestCase):
    def test_codes_carry_at_least_128_random_bits(self) -> None:
        device = BackupCodeDevice.objects.create(user=self.bob, name="Backup codes")
        codes = device.issue_codes(10)
        self.assertEqual(len(set(codes)), 10)
        for code in codes:
            secret = code.replace("-", "")[4:]
            self.assertGreaterEqual(len(secret) * 5, 128)

    def test_a_wrong_code_is_refused_and_throttled(self) -> None:
        device = BackupCodeDevice.objects.create(user=self.bob, name="Backup codes")
        code = device.issue_codes(1)[0]
        wrong = code[:-1] + ("A" if code[-1] != "A" else "B")
        self.assertFalse(device.verify_token(wrong))
        self.assertFalse(device.verify_token(code))  # throttled right after a failure
