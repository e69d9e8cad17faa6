from __future__ import annotations

from django.core import mail
from django.test import override_settings

from audit.models import AccessEvent, Action
from sharing.services import send_link_email
from tests.sharing.helpers import PASSWORD, ShareTestCase


@override_settings(PORTAL_BASE_URL="https://portal.example.org")
class ShareLinkEmailTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.issued = self.issue(recipient_email="pat@example.org", recipient_name="")
        send_link_email(self.issued)
        self.message = mail.outbox[0]
        self.html = self.message.alternatives[0][0]

    def test_it_names_the_practice_and_carries_the_link(self) -> None:
        self.assertEqual(self.message.to, ["pat@example.org"])
        self.assertIn("Smile Dental", self.message.subject)
        url = f"https://portal.example.org/s/{self.issued.token}"
        self.assertIn(url, self.message.body)
        self.assertIn(f'href="{url}"', self.html)
        self.assertIn("date of birth", self.message.body)

    def test_it_never_carries_the_password_or_the_condition(self) -> None:
        for text in [self.message.subject, self.message.body, self.html]:
            self.assertNotIn(PASSWORD, text)
            self.assertNotIn("CBCT", text)
            self.assertNotIn("Pat Example", text)
            self.assertNotIn("1980", text)

    def test_it_is_audited_without_the_token(self) -> None:
        event = AccessEvent.objects.get(action=Action.SHARE_EMAIL)
        self.assertEqual(event.share_code, self.issued.share.code)
        self.assertNotIn(self.issued.token, str(event.detail))

    def test_a_referrer_email_mentions_the_code(self) -> None:
        issued = self.issue(recipient_kind="referrer", recipient_email="dr@example.org")
        send_link_email(issued)
        self.assertIn("one-time code", mail.outbox[-1].body)
