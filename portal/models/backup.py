from __future__ import annotations

import base64
import secrets

from django.contrib.auth.hashers import check_password, make_password
from django.db import models, transaction
from django_otp.models import Device, ThrottlingMixin

LOOKUP_CHARS = 4
SECRET_BYTES = 17  # 136 bits


def _normalise(token: str) -> str:
    return "".join(c for c in token.upper() if c.isalnum())


class BackupCodeDevice(ThrottlingMixin, Device):
    """Single-use backup codes for sign-in, stored only as password hashes.

    A code is a short public lookup id followed by 136 random bits, so checking one costs a
    single hash and a wrong guess cannot be turned into a flood of hash checks.
    """

    class Meta(Device.Meta):
        verbose_name = "backup code set"

    def issue_codes(self, count: int = 10) -> list[str]:
        """Replace this device's codes with `count` new ones and return them once."""
        codes = []
        with transaction.atomic():
            self.codes.all().delete()
            for _ in range(count):
                lookup = secrets.token_hex(LOOKUP_CHARS // 2).upper()
                secret = base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")
                BackupCode.objects.create(
                    device=self, lookup=lookup, secret_hash=make_password(secret)
                )
                raw = lookup + secret
                codes.append("-".join(raw[i : i + 5] for i in range(0, len(raw), 5)))
        return codes

    def verify_token(self, token: str) -> bool:
        token = _normalise(token)
        if len(token) <= LOOKUP_CHARS:
            return False
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        match = self.codes.filter(lookup=token[:LOOKUP_CHARS]).first()
        if match is not None and check_password(token[LOOKUP_CHARS:], match.secret_hash):
            # Only the request that deletes the row may use the code: two at once, one wins.
            deleted, _ = self.codes.filter(pk=match.pk).delete()
            if not deleted:
                return False
            self.throttle_reset(commit=False)
            self.save()
            return True
        self.throttle_increment()
        return False

    def get_throttle_factor(self) -> int:
        return 1


class BackupCode(models.Model):
    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    lookup = models.CharField(max_length=LOOKUP_CHARS, help_text="Public part, for lookup.")
    secret_hash = models.CharField(max_length=200, help_text="Django password hash.")

    def __str__(self) -> str:
        return f"backup code {self.lookup}"
