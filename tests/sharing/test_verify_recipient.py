from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

from django.core import mail
from django.utils import timezone

from audit.models import AccessEvent, Action, Outcome
from sharing import throttle, verification
from sharing.models import ShareCode, VerificationFailure
from sharing.session import VERIFIED_KEY
from tests.sharing.helpers import PASSWORD, ShareTestCase


class Clock:
    """A controllable now() for the throttle and code seams."""

    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self):
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ClockedTestCase(ShareTestCase):
    """Throttle and code time comes from self.clock."""

    def setUp(self) -> None:
        super().setUp()
        self.clock = Clock()
        for target in (throttle, verification):
            patcher = mock.patch.object(target, "_now", self.clock)
            patcher.start()
            self.addCleanup(patcher.stop)

    def fail_once(self, **kwargs):
        self.clock.tick(60)
        return self.verify(password="wrong-password-1", **kwargs)


class VerifyRecipientTestCase(ClockedTestCase):
    def test_it_verifies_password_and_birth_date(self) -> None:
        self.open_link()
        key = self.client.session.session_key
        r = self.verify()
        self.assertEqual(r.status_code, 303)
        self.assertEqual(r["Location"], "/s/home/")
        self.assertIn(VERIFIED_KEY, self.client.session)
        self.assertNotEqual(self.client.session.session_key, key)
        event = AccessEvent.objects.filter(action=Action.SHARE_VERIFY).get()
        self.assertEqual(event.outcome, Outcome.OK)

    def test_each_wrong_part_gets_the_same_answer(self) -> None:
        self.open_link()
        answers = []
        for password, birth in [("wrong-password-1", "1980-05-17"), (PASSWORD, "1980-05-18"),
                                (PASSWORD, ""), (PASSWORD, "17/05/1980")]:  # fmt: skip
            self.clock.tick(60)
            r = self.verify(password=password, birth_date=birth)
            answers.append((r.status_code, r.content.decode().replace(r.wsgi_request.META.get(
                "CSRF_COOKIE", ""), "")))  # fmt: skip
        self.assertEqual({a[0] for a in answers}, {200})
        self.assertEqual(len({re.sub(r'value="[^"]+"', "", a[1]) for a in answers}), 1)
        self.assertNotIn(VERIFIED_KEY, self.client.session)

    def test_it_needs_an_opened_link(self) -> None:
        self.assertEqual(self.verify().status_code, 404)

    def test_it_locks_after_five_failures(self) -> None:
        self.open_link()
        statuses = [self.fail_once().status_code for _ in range(5)]
        self.assertEqual(statuses, [200, 200, 200, 200, 423])
        self.share.refresh_from_db()
        self.assertIsNotNone(self.share.locked_at)
        self.assertTrue(AccessEvent.objects.filter(action=Action.SHARE_LOCK).exists())
        self.clock.tick(60)
        self.assertEqual(self.verify().status_code, 423)  # right answers no longer help
        self.assertEqual(self.open_link().status_code, 423)

    def test_an_early_retry_is_refused_like_a_wrong_password(self) -> None:
        self.open_link()
        self.fail_once()
        r = self.verify()  # right answers, but sooner than the 0.1 s delay
        self.assertContains(r, "do not match")
        self.assertNotIn(VERIFIED_KEY, self.client.session)
        self.clock.tick(1)
        self.assertEqual(self.verify().status_code, 303)

    def test_a_thousand_wrong_passwords_end_in_429(self) -> None:
        self.open_link()
        statuses = []
        for i in range(1000):
            self.clock.tick(0.05)
            statuses.append(self.verify(password=f"guess-{i:04d}-x").status_code)
        self.assertLessEqual(set(statuses[:11]), {200, 423})  # wrong, refused early, locked
        self.assertEqual(set(statuses[11:]), {429})
        self.assertEqual(VerificationFailure.objects.count(), 11)
        self.assertFalse(AccessEvent.objects.filter(action=Action.SHARE_VERIFY, outcome=Outcome.OK))
        r = self.verify()
        self.assertEqual(r.status_code, 429)
        self.assertTrue(0 < int(r["Retry-After"]) <= 1800)

    def test_429_lifts_after_the_window(self) -> None:
        links = [self.issue() for _ in range(3)]
        for i in range(11):
            self.open_link(links[i % 3])
            self.fail_once()
        self.open_link()
        self.assertEqual(self.verify().status_code, 429)
        self.clock.tick(31 * 60)
        self.assertEqual(self.verify().status_code, 303)

    def test_every_outcome_is_audited_without_secrets(self) -> None:
        self.open_link()
        self.fail_once()
        self.clock.tick(60)
        self.verify()
        events = AccessEvent.objects.filter(action=Action.SHARE_VERIFY)
        self.assertEqual(sorted(e.outcome for e in events), [Outcome.FAILED, Outcome.OK])
        for e in events:
            self.assertNotIn(PASSWORD, str(e.detail))
            self.assertNotIn("1980", str(e.detail))

    def test_get_shows_the_form(self) -> None:
        self.open_link()
        r = self.client.get("/s/")
        self.assertContains(r, 'name="birth_date"')
        self.assertNotContains(r, "Pat")


class ReferrerVerifyTestCase(ClockedTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.issued = self.issue(recipient_kind="referrer", recipient_email="dr@example.org")
        self.share = self.issued.share
        self.open_link()

    def send_code(self) -> str:
        self.clock.tick(120)
        mail.outbox.clear()
        r = self.client.post("/s/code/")
        self.assertEqual(r.status_code, 303)
        return re.search(r"\b(\d{6})\b", mail.outbox[0].body)[1]

    def test_get_sends_no_code(self) -> None:
        self.client.get("/s/")
        self.assertContains(self.client.get("/s/"), "Email me a code")
        self.assertEqual(len(mail.outbox), 0)
        self.assertEqual(self.client.get("/s/code/").status_code, 405)

    def test_it_verifies_password_and_code_once(self) -> None:
        code = self.send_code()
        self.assertEqual(mail.outbox[0].to, ["dr@example.org"])
        self.assertEqual(self.verify(code=code).status_code, 303)
        self.open_link()
        self.clock.tick(60)
        self.assertContains(self.verify(code=code), "do not match")

    def test_code_is_stored_hashed_and_expires(self) -> None:
        code = self.send_code()
        self.assertFalse(ShareCode.objects.filter(code_hash__contains=code).exists())
        self.clock.tick(11 * 60)
        self.assertContains(self.verify(code=code), "do not match")

    def test_wrong_password_with_right_code_fails_alike(self) -> None:
        code = self.send_code()
        r = self.verify(password="wrong-password-1", code=code)
        self.assertContains(r, "do not match")
        self.clock.tick(60)
        self.assertContains(self.verify(code="000000" if code != "000000" else "111111"),
                            "do not match")  # fmt: skip

    def test_codes_are_rate_limited(self) -> None:
        for _ in range(7):
            self.clock.tick(1)
            self.client.post("/s/code/")
        self.assertEqual(len(mail.outbox), 1)
