"""Practice admins add staff; the new member chooses a password from an emailed link."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from django.contrib.auth.models import User
from django.core import mail

from audit.models import AccessEvent, Action
from portal.models import Role, StaffMember
from sharing.logfilter import mask_tokens
from tests.base import BaseTestCase, make_staff

NEW = {
    "username": "erin",
    "full_name": "Erin Bright",
    "email": "erin@example.org",
    "role": "clinician",
}
NEW_PASSWORD = "molar-canopy-19-orbit"


class StaffInviteTestCase(BaseTestCase):
    def _link(self) -> str:
        (message,) = mail.outbox
        return urlsplit(re.search(r"https?://\S+", message.body).group(0)).path

    def test_admin_adds_a_member_who_sets_a_password_and_then_must_enrol(self) -> None:
        self.login(self.alice)
        self.assertContains(self.client.get("/practice/staff/"), "Add a staff member")
        r = self.client.post("/practice/staff/new/", NEW)
        self.assertRedirects(r, "/practice/staff/", fetch_redirect_response=False)
        erin = User.objects.get(username="smile.erin")
        member = StaffMember.objects.get(user=erin)
        self.assertEqual((member.practice, member.role), (self.practice, Role.CLINICIAN))
        self.assertFalse(erin.has_usable_password())
        self.assertEqual(mail.outbox[0].to, ["erin@example.org"])
        self.assertIn("Smile Dental", mail.outbox[0].body)
        self.assertIn("erin", mail.outbox[0].body)
        changes = AccessEvent.objects.filter(action=Action.STAFF_CHANGE).order_by("id")
        self.assertEqual(
            [e.detail["change"] for e in changes], ["created as clinician", "password link sent"]
        )

        link = self._link()
        self.client.logout()
        r = self.client.get(link)
        self.assertEqual(r.status_code, 302)
        form_url = r["Location"]
        self.assertNotIn(link.rstrip("/").rsplit("/", 1)[1], form_url, "token left in the URL")
        page = self.client.get(form_url)
        self.assertContains(page, "Choose your password")
        r = self.client.post(
            form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        )
        self.assertRedirects(r, "/login/", fetch_redirect_response=False)
        erin.refresh_from_db()
        self.assertTrue(erin.check_password(NEW_PASSWORD))
        self.assertTrue(
            AccessEvent.objects.filter(user=erin, detail__change="password chosen").exists()
        )

        # The link works once.
        again = self.client.get(link, follow=True)
        self.assertContains(again, "already been used or has expired")
        # Signing in with the new password leads to authenticator enrolment, not the workspace.
        r = self.client.post("/login/", {"username": "smile.erin", "password": NEW_PASSWORD})
        self.assertEqual(r.status_code, 302)
        self.assertIn(
            "/login/enroll/", self.client.get(r["Location"]).get("Location", "") + r["Location"]
        )

    def test_a_weak_password_is_refused_and_the_link_stays_usable(self) -> None:
        self.login(self.alice)
        self.client.post("/practice/staff/new/", NEW)
        link = self._link()
        self.client.logout()
        form_url = self.client.get(link)["Location"]
        r = self.client.post(form_url, {"new_password1": "short", "new_password2": "short"})
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, "too short")
        self.assertFalse(User.objects.get(username="smile.erin").has_usable_password())

    def test_it_does_not_tell_whether_another_practice_has_a_username(self) -> None:
        """Charlie is a username of another practice: adding "charlie" here just works."""
        self.login(self.alice)
        r = self.client.post("/practice/staff/new/", {**NEW, "username": "charlie"})
        self.assertRedirects(r, "/practice/staff/", fetch_redirect_response=False)
        member = StaffMember.objects.get(user__username="smile.charlie")
        self.assertEqual(member.practice, self.practice)
        self.assertEqual(self.charlie.staffmember.practice, self.practice_b)

    def test_bad_new_member_input_is_refused_with_a_reason(self) -> None:
        User.objects.create_user("smile.dup")
        self.login(self.alice)
        for case, reason in [
            ({"username": "dup"}, "smile.dup is taken in your practice"),
            ({"username": "a b"}, "3 to 40 letters"),
            ({"email": "not-an-email"}, "valid email"),
            ({"role": "superuser"}, "Select a valid choice"),
        ]:
            with self.subTest(case=case):
                r = self.client.post("/practice/staff/new/", {**NEW, **case})
                self.assertContains(r, reason, status_code=400)
        self.assertFalse(User.objects.filter(username="smile.erin").exists())
        self.assertEqual(mail.outbox, [])

    def test_only_practice_admins_add_staff(self) -> None:
        for user in (self.bob, self.charlie):
            with self.subTest(user=user.username):
                self.login(user)
                self.assertEqual(self.client.post("/practice/staff/new/", NEW).status_code, 404)
        self.assertFalse(User.objects.filter(username="smile.erin").exists())

    def test_a_forgotten_password_gets_a_new_link(self) -> None:
        self.login(self.alice)
        r = self.client.post("/practice/staff/bob/password-link/")
        self.assertEqual(r.status_code, 302)
        self.assertEqual(mail.outbox[0].to, [self.bob.email])
        self.login(self.charlie)
        self.assertEqual(self.client.post("/practice/staff/bob/password-link/").status_code, 404)
        self.assertEqual(len(mail.outbox), 1)

    def test_the_invitation_token_is_masked_in_logs(self) -> None:
        self.login(self.alice)
        self.client.post("/practice/staff/new/", NEW)
        link = self._link()
        token = link.rstrip("/").rsplit("/", 1)[1]
        self.assertNotIn(token, mask_tokens(f'"GET {link} HTTP/1.1" 302 0'))
        with self.assertLogs("django.request", level=logging.WARNING) as logs:
            self.client.logout()
            self.client.get(link + "extra/")  # an unknown path is logged as "Not Found: <path>"
        self.assertTrue(logs.output)
        self.assertFalse(any(token in line for line in logs.output))

    def test_a_member_without_email_gets_no_link_and_the_admin_is_told(self) -> None:
        User.objects.filter(pk=self.bob.pk).update(email="")
        make_staff("dora", self.practice, Role.FRONT_DESK)
        self.login(self.alice)
        page = self.client.get("/practice/staff/")
        self.assertNotContains(page, "/practice/staff/bob/password-link/")
        self.assertContains(page, "/practice/staff/dora/password-link/")
        r = self.client.post("/practice/staff/bob/password-link/", follow=True)
        self.assertContains(r, "has no email address on file; ask the portal")
        self.assertEqual(mail.outbox, [])
        self.assertFalse(AccessEvent.objects.filter(detail__change="password link sent").exists())
