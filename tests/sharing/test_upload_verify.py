"""The upload link's verification page forgives what the recipient's page forgives."""

from __future__ import annotations

from unittest import mock

from sharing import throttle
from sharing.models import UploadLink, VerificationFailure
from sharing.uploads.services import issue_upload_link
from tests.base import BaseTestCase
from tests.sharing.test_verify_recipient import Clock
from tests.sharing.upload_helpers import PASSWORD

RIGHT_DATE = {"birth_day": "17", "birth_month": "5", "birth_year": "1980"}


class UploadVerifyTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.issued = issue_upload_link(
            patient=self.pat, created_by=self.alice, password=PASSWORD, sender_name="Dr Other"
        )
        self.link = self.issued.link
        self.clock = Clock()
        patcher = mock.patch.object(throttle, "_now", self.clock)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.client.get(self.issued.path)

    def answer(self, password: str = PASSWORD, **fields: str):
        return self.client.post("/u/", {"password": password, **(fields or RIGHT_DATE)})

    def failures(self) -> int:
        self.link.refresh_from_db()
        return self.link.failed_attempts

    def test_the_birth_date_is_day_month_and_year_with_a_show_password_control(self) -> None:
        page = self.client.get("/u/")
        self.assertContains(page, 'name="birth_day"')
        self.assertContains(page, '<option value="5">May</option>', html=False)
        self.assertContains(page, 'name="birth_year"')
        self.assertNotContains(page, 'type="date"')  # the browser's locale cannot swap them
        self.assertContains(page, 'id="show-password"')
        self.assertContains(page, "sharing/verify.js")

    def test_day_month_and_year_get_through(self) -> None:
        r = self.answer()
        self.assertEqual((r.status_code, r["Location"]), (303, "/u/"))

    def test_an_incomplete_date_says_what_to_fix_and_counts_nothing(self) -> None:
        r = self.answer(birth_day="17", birth_month="", birth_year="1980")
        self.assertContains(r, "Fill in the day, the month and the year", status_code=400)
        self.assertContains(r, f'value="{PASSWORD}"', status_code=400)
        self.assertEqual(self.failures(), 0)
        self.assertFalse(VerificationFailure.objects.exists())

    def test_a_right_answer_during_the_wait_is_told_to_wait_not_refused(self) -> None:
        self.clock.tick(60)
        self.answer(password="wrong-password-1")
        r = self.answer()  # right answers, sooner than the address's delay
        self.assertEqual(r.status_code, 429)
        self.assertEqual(r["Retry-After"], "1")
        self.assertContains(r, "Nothing you typed was checked or counted", status_code=429)
        self.assertNotContains(r, "do not match", status_code=429)
        self.assertEqual(self.failures(), 1)
        self.clock.tick(1)
        self.assertEqual(self.answer().status_code, 303)

    def test_a_refusal_keeps_what_was_typed_and_says_how_many_tries_are_left(self) -> None:
        pages = []
        for _ in range(4):
            self.clock.tick(60)
            pages.append(self.answer(password="amber-anchor-apple-arow-12").content.decode())
        self.assertIn("do not match", pages[0])
        self.assertIn("4 tries left", pages[0])
        self.assertIn("One try left", pages[3])
        self.assertIn('value="amber-anchor-apple-arow-12"', pages[0])
        self.assertIn('<option value="5" selected>May</option>', pages[0])
        self.assertIn('value="1980"', pages[0])
        self.assertEqual(self.failures(), 4)
        self.assertIsNone(UploadLink.objects.get(pk=self.link.pk).locked_at)
