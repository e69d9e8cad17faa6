"""Check a recipient's answers and issue the one-time codes referrers receive by email."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.contrib.auth.hashers import check_password
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from sharing.models import ShareCode, ShareLink

CODE_LIFETIME = timedelta(minutes=10)
CODES_PER_HOUR = 5
CODE_INTERVAL = timedelta(seconds=30)
_SALT = "sharing.verification.code"


def _now() -> datetime:
    return timezone.now()


def hash_code(share: ShareLink, code: str) -> str:
    """Return the keyed hash of a code; keyed so a leaked table cannot be brute-forced."""
    return salted_hmac(_SALT, f"{share.code}:{code}", algorithm="sha256").hexdigest()


def can_send_code(share: ShareLink) -> bool:
    """Return whether another code may be emailed now (limits mail bombing a referrer)."""
    now = _now()
    recent = ShareCode.objects.filter(share=share, created_at__gt=now - timedelta(hours=1))
    if recent.count() >= CODES_PER_HOUR:
        return False
    return not recent.filter(created_at__gt=now - CODE_INTERVAL).exists()


def issue_code(share: ShareLink) -> str:
    """Create a 6-digit code for the link, replacing any unused one, and return it."""
    code = f"{secrets.randbelow(10**6):06d}"
    now = _now()
    with transaction.atomic():
        ShareCode.objects.filter(share=share, used_at__isnull=True).update(used_at=now)
        ShareCode.objects.create(
            share=share,
            code_hash=hash_code(share, code),
            created_at=now,
            expires_at=now + CODE_LIFETIME,
        )
    return code


def check_answers(share: ShareLink, password: str, second: str) -> bool:
    """Return whether password and birth date (patient) or code (referrer) are both right.

    Both parts are always checked, so a wrong password and a wrong second part take the
    same path and time.
    """
    password_ok = check_password(password or "", share.password_hash)
    second = (second or "").strip()
    code_row = None
    if share.recipient_kind == ShareLink.Recipient.PATIENT:
        birth = share.patient.birth_date
        # Without a birth date on file nothing matches; the random value keeps the timing.
        expected = birth.isoformat() if birth else secrets.token_hex(16)
        second_ok = constant_time_compare(second, expected)
    else:
        code_row = (
            ShareCode.objects.filter(share=share, used_at__isnull=True, expires_at__gt=_now())
            .order_by("-created_at")
            .first()
        )
        expected = code_row.code_hash if code_row else secrets.token_hex(32)
        given = hash_code(share, second) if second.isdigit() and len(second) == 6 else ""
        second_ok = constant_time_compare(given, expected) and code_row is not None
    ok = password_ok and second_ok
    if ok and code_row is not None:
        # Single use: a second verification with the same code finds it spent.
        spent = ShareCode.objects.filter(pk=code_row.pk, used_at__isnull=True).update(
            used_at=_now()
        )
        ok = bool(spent)
    return ok
