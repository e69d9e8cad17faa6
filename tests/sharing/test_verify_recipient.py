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
        answers = []
        for password, birth in [("wrong-password-1", ("17", "5", "1980")),
                                (PASSWORD, ("18", "5", "1980")), (PASSWORD, ("17", "6", "1980")),
                                (PASSWORD, ("17", "5", "1981"))]:  # fmt: skip
            self.open_link(self.issue())
            self.clock.tick(60)
            day, month, year = birth
            r = self.verify(password=password, birth_date="", birth_day=day, birth_month=month,
                            birth_year=year)  # fmt: skip
            page = r.content.decode().replace(r.wsgi_request.META.get("CSRF_COOKIE", ""), "")
            answers.append((r.status_code, re.sub(r' (value="[^"]+"|selected)', "", page)))
        self.assertEqual({a[0] for a in answers}, {200})
        self.assertEqual(len({a[1] for a in answers}), 1)
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

    def test_a_right_answer_during_the_wait_is_told_to_wait_not_refused(self) -> None:
        """Sent sooner than the address's delay, right answers are neither judged nor counted."""
        self.open_link()
        self.fail_once()
        r = self.verify()  # right answers, but sooner than the 0.1 s delay
        self.assertEqual(r.status_code, 429)
        self.assertEqual(r["Retry-After"], "1")
        self.assertContains(r, 'wait <strong class="seconds">1 second</strong>', status_code=429)
        self.assertNotContains(r, "do not match", status_code=429)
        self.assertEqual(VerificationFailure.objects.count(), 1)
        self.share.refresh_from_db()
        self.assertEqual(self.share.failed_attempts, 1)
        self.clock.tick(1)
        self.assertEqual(self.verify().status_code, 303)

    def test_the_wait_says_how_many_seconds_are_left(self) -> None:
        self.open_link()
        for _ in range(8):  # the delay doubles: 0.1 s after one failure, 12.8 s after eight
            self.fail_once()
            self.open_link(self.issue())
        self.clock.tick(3)
        r = self.verify()
        self.assertContains(r, "10 seconds", status_code=429)
        self.assertEqual(r["Retry-After"], "10")

    def test_it_says_how_many_tries_are_left_before_the_last(self) -> None:
        self.open_link()
        pages = [self.fail_once().content.decode() for _ in range(4)]
        self.assertIn("4 tries left", pages[0])
        self.assertIn("2 tries left", pages[2])
        self.assertIn("One try left", pages[3])
        self.assertIn("555-0100", pages[3])

    def test_a_refused_page_keeps_what_was_typed(self) -> None:
        self.open_link()
        self.clock.tick(60)
        r = self.verify(password="amber-anchor-apple-arow-12", birth_date="",
                        birth_day="17", birth_month="5", birth_year="1980")  # fmt: skip
        self.assertContains(r, 'value="amber-anchor-apple-arow-12"')
        self.assertContains(r, 'name="birth_day"')
        self.assertContains(r, 'value="17"')
        self.assertContains(r, '<option value="5" selected>May</option>')
        self.assertContains(r, 'value="1980"')
        self.assertNotContains(self.client.get("/s/"), "amber-anchor")  # not after a reload

    def test_it_offers_a_show_password_control(self) -> None:
        self.open_link()
        r = self.client.get("/s/")
        self.assertContains(r, 'id="show-password" aria-controls="id_password"')
        self.assertContains(r, "/static/sharing/verify.js")

    def test_the_birth_date_is_day_month_year_in_the_practices_order(self) -> None:
        self.open_link()
        page = self.client.get("/s/").content.decode()
        self.assertLess(page.index('name="birth_day"'), page.index('name="birth_month"'))
        self.assertLess(page.index('name="birth_month"'), page.index('name="birth_year"'))
        self.assertIn('<option value="7">July</option>', page)
        self.assertNotIn('type="date"', page)
        self.practice.date_order = "mdy"
        self.practice.save()
        page = self.client.get("/s/").content.decode()
        self.assertLess(page.index('name="birth_month"'), page.index('name="birth_day"'))

    def test_day_month_and_year_verify(self) -> None:
        self.open_link()
        r = self.verify(birth_date="", birth_day="17", birth_month="5", birth_year="1980")
        self.assertEqual(r.status_code, 303)

    def test_a_date_that_cannot_be_is_explained_and_not_counted(self) -> None:
        self.open_link()
        for day, month, year, says in [
            ("31", "2", "1980", "does not exist in that month"),
            ("17", "5", "80", "four digits"),
            ("", "5", "1980", "Fill in the day"),
            ("17", "5", "2999", "Check the year"),
        ]:
            with self.subTest(day=day, month=month, year=year):
                self.clock.tick(60)
                r = self.verify(birth_date="", birth_day=day, birth_month=month, birth_year=year)
                self.assertContains(r, says, status_code=400)
                self.assertContains(r, "autofocus", status_code=400)
        self.assertEqual(VerificationFailure.objects.count(), 0)
        self.share.refresh_from_db()
        self.assertEqual(self.share.failed_attempts, 0)

    def test_a_thousand_wrong_passwords_end_in_429(self) -> None:
        self.open_link()
        statuses = []
        for i in range(1000):
            self.clock.tick(0.05)
            statuses.append(self.verify(password=f"guess-{i:04d}-x").status_code)
        # Judged wrong, told to wait, then locked; past 10 counted failures only 429.
        self.assertLessEqual(set(statuses), {200, 423, 429})
        self.assertEqual(statuses.count(200), 4)
        self.assertEqual(set(statuses[-900:]), {429})
        self.assertEqual(VerificationFailure.objects.count(), 11)
        self.assertFalse(AccessEvent.objects.filter(action=Action.SHARE_VERIFY, outcome=Outcome.OK))
        self.clock.tick(60)
        r = self.verify()
        self.assertEqual(r.status_code, 429)
        self.assertContains(r, "Too many attempts", status_code=429)
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
        self.assertContains(r, 'name="birth_year"')
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
        page = self.client.get("/s/").content.decode()
        # Asking for the code comes first: a first-time referrer met the code field before
        # learning how to get one.
        self.assertLess(page.index("Email me a code"), page.index('id="id_code"'))
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

    def test_an_earlier_code_works_until_it_is_used(self) -> None:
        first = self.send_code()
        second = self.send_code()
        self.assertEqual(self.verify(code=first).status_code, 303)
        self.open_link()
        self.clock.tick(60)
        self.assertEqual(self.verify(code=second).status_code, 303)
        self.open_link()
        self.clock.tick(60)
        self.assertContains(self.verify(code=first), "do not match")

    def test_it_says_sent_only_when_a_code_was_sent(self) -> None:
        self.send_code()
        self.assertContains(self.client.get("/s/"), "on its way")
        self.clock.tick(5)
        self.client.post("/s/code/")
        r = self.client.get("/s/")
        self.assertEqual(len(mail.outbox), 1)
        self.assertNotContains(r, "on its way")
        self.assertContains(r, "No new code was sent")
        self.assertContains(r, "in 25 seconds")
        self.clock.tick(25)
        self.client.post("/s/code/")
        r = self.client.get("/s/")
        self.assertEqual(len(mail.outbox), 2)
        self.assertContains(r, "on its way")

    def test_codes_are_rate_limited(self) -> None:
        for _ in range(7):
            self.clock.tick(1)
            self.client.post("/s/code/")
        self.assertEqual(len(mail.outbox), 1)
