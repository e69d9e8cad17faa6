"""BAAs: status at a glance, and one email to the practice's admins per change of state."""

from __future__ import annotations

from datetime import date

from django.core import mail

from portal.compliance import baas
from portal.models import BusinessAssociateAgreement
from tests.base import BaseTestCase


class BaaNoticesTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.baa = BusinessAssociateAgreement.objects.create(
            practice=self.practice, associate="Cloud Backup Inc", signed_on=date(2025, 1, 1),
            expires_on=date(2026, 6, 30),
        )  # fmt: skip

    def test_status_follows_the_end_date(self) -> None:
        self.assertEqual(self.baa.status_on(date(2026, 4, 1)), "active")
        self.assertEqual(self.baa.status_on(date(2026, 5, 1)), "ending")
        self.assertEqual(self.baa.status_on(date(2026, 7, 1)), "ended")
        self.baa.auto_renews = True
        self.assertEqual(self.baa.status_on(date(2026, 7, 1)), "active")

    def test_it_emails_the_admins_once_per_change(self) -> None:
        self.assertEqual(baas.notify(date(2026, 4, 1)), 0)
        self.assertEqual(baas.notify(date(2026, 5, 1)), 1)
        self.assertEqual(baas.notify(date(2026, 5, 2)), 0)
        self.assertEqual(baas.notify(date(2026, 7, 1)), 1)
        self.assertEqual(len(mail.outbox), 2)
        self.assertEqual(mail.outbox[0].to, ["alice@example.org"])
        self.assertIn("ends soon: Cloud Backup Inc", mail.outbox[0].subject)
        self.assertIn("ended on 30 June 2026", mail.outbox[1].body)

    def test_another_practices_admins_are_not_told(self) -> None:
        baas.notify(date(2026, 5, 1))
        recipients = {address for message in mail.outbox for address in message.to}
        self.assertEqual(recipients, {"alice@example.org"})
