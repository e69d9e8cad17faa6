"""The issuer (and, if asked, the recipient) hears of a link's first open and first download."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.core import mail
from django.utils import timezone

from audit.models import AccessEvent, Action
from tests.sharing.helpers import ShareTestCase


class LinkNoticesTestCase(ShareTestCase):
    def verify_in_new_browser(self) -> None:
        client = self.client_class()
        self.sign_in(client=client)

    def test_the_first_open_emails_the_issuer_without_patient_details(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            self.sign_in()
        self.assertEqual(len(mail.outbox), 1)
        message = mail.outbox[0]
        self.assertEqual(message.to, ["alice@example.org"])
        self.assertIn("opened for the first time", message.body)
        self.assertIn(f"/shares/?link={self.share.code}", message.body)
        for private in ("Pat", "Example", "1980", "CBCT", "P-1001"):
            self.assertNotIn(private, message.subject + message.body)
        event = AccessEvent.objects.get(action=Action.SHARE_EMAIL)
        self.assertEqual(event.detail, {"email": "opened_notice", "to": "issuer"})

    def test_times_are_told_in_the_practices_zone(self) -> None:
        # The task rendered them in the server's zone: "10:08 (UTC)" for a New York practice.
        self.practice.time_zone = "America/New_York"
        self.practice.save(update_fields=["time_zone"])
        with self.captureOnCommitCallbacks(execute=True):
            self.sign_in()
        body = mail.outbox[0].body
        local = timezone.localtime(timezone.now(), ZoneInfo("America/New_York"))
        self.assertIn(f"at {local:%H}:", body)
        self.assertIn(f"({local:%Z})", body)  # EST or EDT

    def test_later_opens_send_nothing(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            self.sign_in()
        with self.captureOnCommitCallbacks(execute=True):
            self.verify_in_new_browser()
        self.assertEqual(len(mail.outbox), 1)

    def test_the_recipient_is_told_too_when_asked(self) -> None:
        issued = self.issue(recipient_email="pat@example.org", notify_recipient=True)
        with self.captureOnCommitCallbacks(execute=True):
            self.sign_in(issued)
        self.assertEqual(
            sorted(m.to[0] for m in mail.outbox), ["alice@example.org", "pat@example.org"]
        )
        to_pat = next(m for m in mail.outbox if m.to == ["pat@example.org"])
        self.assertIn("555-0100", to_pat.body)

    def test_the_practice_can_turn_them_off(self) -> None:
        self.practice.notify_link_activity = False
        self.practice.save()
        with self.captureOnCommitCallbacks(execute=True):
            self.sign_in()
        self.assertEqual(mail.outbox, [])

    def test_the_first_complete_download_emails_the_issuer(self) -> None:
        self.sign_in()
        mail.outbox.clear()
        for _ in range(2):
            with self.captureOnCommitCallbacks(execute=True):
                r = self.client.get("/s/download/share.zip")
                b"".join(r.streaming_content)
        self.assertEqual(len(mail.outbox), 1)
        self.assertIn("downloaded for the first time", mail.outbox[0].body)
