"""Authenticator seeds are encrypted at rest: a copy of the database gives no working code."""

from __future__ import annotations

import base64
import io
import secrets
from binascii import Error as HexError

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.base import BaseTestCase


def code(seed: bytes) -> str:
    return f"{totp(seed):06d}"


class SealedSeedsTestCase(BaseTestCase):
    def raw_column(self, device: TOTPDevice) -> str:
        with connection.cursor() as cursor:
            table = TOTPDevice._meta.db_table
            cursor.execute(f"SELECT key FROM {table} WHERE id = %s", [device.pk])  # noqa: S608
            return cursor.fetchone()[0]

    def test_the_database_alone_does_not_give_a_working_code(self) -> None:
        device = self.bob.totpdevice_set.get()
        stolen = self.raw_column(device)
        seed = device.bin_key
        self.assertNotIn(seed.hex(), stolen)
        try:
            guessed = code(bytes.fromhex(stolen))
        except (ValueError, HexError):
            guessed = None
        self.assertNotEqual(guessed, code(seed))
        self.assertTrue(device.verify_token(code(seed)))

    def test_rotate_keys_reseals_the_seeds(self) -> None:
        device = self.bob.totpdevice_set.get()
        seed = device.bin_key
        new = {"rotated": secrets.token_bytes(32), **settings.PORTAL_KEYS}
        with override_settings(PORTAL_KEYS=new, PORTAL_CURRENT_KEY_ID="rotated"):
            call_command("rotate_keys", stdout=io.StringIO())
            device.refresh_from_db()
            self.assertTrue(self.raw_column(device).startswith("v1:rotated:"))
            self.assertEqual(device.bin_key, seed)
        self.assertNotIn(base64.b64encode(seed).decode(), self.raw_column(device))
