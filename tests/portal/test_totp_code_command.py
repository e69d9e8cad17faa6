"""`manage.py totp_code USER` names what is wrong: no such user, or no authenticator."""

from __future__ import annotations

import io

from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase


class TotpCodeCommandTestCase(TestCase):
    def test_an_unknown_user_is_said_to_be_unknown(self) -> None:
        with self.assertRaisesMessage(CommandError, "No user is called 'nobody'."):
            call_command("totp_code", "nobody", stdout=io.StringIO())

    def test_a_user_without_an_authenticator_is_said_to_have_none(self) -> None:
        User.objects.create_user("dora")
        with self.assertRaisesMessage(CommandError, "That user has no confirmed authenticator."):
            call_command("totp_code", "dora", stdout=io.StringIO())
