"""Check a recipient's answers and issue the one-time codes referrers receive by email."""

from __future__ import annotations

import math
import secrets
from datetime import date, datetime, timedelta

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


def code_wait(share: ShareLink) -> int:
    """Return the seconds before another code may be emailed (0: now); limits mail bombing."""
    now = _now()
    recent = list(
        ShareCode.objects.filter(share=share, created_at__gt=now - timedelta(hours=1))
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:CODES_PER_HOUR]
    )
    frees_at = [recent[0] + CODE_INTERVAL] if recent else []
    if len(recent) >= CODES_PER_HOUR:
        frees_at.append(recent[-1] + timedelta(hours=1))
    wait = max((t - now).total_seconds() for t in frees_at) if frees_at else 0.0
    return max(0, math.ceil(wait))


def can_send_code(share: ShareLink) -> bool:
    """Return whether another code may be emailed now."""
    return code_wait(share) == 0


def issue_code(share: ShareLink) -> str:
    """Create a 6-digit code for the link and return it.

    Earlier unused codes stay valid until they expire: a referrer who asked twice may type
    either email's code.
    """
    code = f"{secrets.randbelow(10**6):06d}"
    now = _now()
    with transaction.atomic():
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
        rows = list(
            ShareCode.objects.filter(share=share, used_at__isnull=True, expires_at__gt=_now())
            .order_by("-created_at")
            .only("pk", "code_hash")[:CODES_PER_HOUR]
        )
        given = hash_code(share, second) if second.isdigit() and len(second) == 6 else ""
        # Every live code is compared, so the time taken does not tell which one matched.
        matches = [row for row in rows if constant_time_compare(given, row.code_hash)]
        code_row = matches[0] if matches else None
        second_ok = code_row is not None
    ok = password_ok and second_ok
    if ok and code_row is not None:
        # Single use: a second verification with the same code finds it spent.
        spent = ShareCode.objects.filter(pk=code_row.pk, used_at__isnull=True).update(
            used_at=_now()
        )
        ok = bool(spent)
    return ok


def month_names() -> list[tuple[int, str]]:
    """Return (number, English name) of the twelve months, for the birth date field."""
    return [(n, date(2000, n, 1).strftime("%B")) for n in range(1, 13)]


def birth_date_from(data) -> tuple[str, str]:  # noqa: ANN001 - a QueryDict
    """Return (ISO date, "") from the day, month and year fields, or ("", what to fix).

    A form that is incomplete or names no real date is answered with what to fix, before
    any secret is compared: it is not an attempt, so it is neither judged nor counted.
    The single `birth_date` field (YYYY-MM-DD) of older pages is still understood.
    """
    parts = [str(data.get(f"birth_{p}", "")).strip()[:8] for p in ("day", "month", "year")]
    if not any(parts):
        value = str(data.get("birth_date", "")).strip()[:20]
        try:
            return date.fromisoformat(value).isoformat(), ""
        except ValueError:
            return "", "Fill in the day, the month and the year you were born."
    day, month, year = parts
    if not (day and month and year):
        return "", "Fill in the day, the month and the year you were born."
    if not (day.isdigit() and month.isdigit()):
        return "", "Write the day as a number, like 7, and choose the month from the list."
    if not (year.isdigit() and len(year) == 4):
        return "", "Write the year with four digits, like 1984."
    try:
        born = date(int(year), int(month), int(day))
    except ValueError:
        return "", "That day does not exist in that month. Check the day and the month."
    if not date(1900, 1, 1) <= born <= date.today():
        return "", "Check the year: it should be the year you were born."
    return born.isoformat(), ""


def spend_code(share: ShareLink, code: str) -> None:
    """Spend one code whose email could not be sent, so no unsent code stays valid."""
    ShareCode.objects.filter(share=share, code_hash=hash_code(share, code)).update(used_at=_now())
