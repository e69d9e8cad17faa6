"""Staff sign-in throttle that a stranger cannot turn against an account's owner.

Failed passwords are counted in the database (portal.models.SignInEvent), in a sliding
window of 30 minutes:
- a username together with an address: 5 failures stop that pair;
- an address alone: 20 failures stop it for every username (password spraying);
- a username from browsers it has never signed in from: 10 failures stop those browsers,
  so guesses spread over many addresses stay few;
- a browser the owner signed in from (a signed device cookie, as OWASP's "device cookies"
  describe) has its own count of 5 and is not stopped by the limits above.
An attempt refused during a lockout checks no password and is not counted, so a lockout
ends on time however often a stranger knocks. The owner on a new browser can ask for an
emailed link that makes that browser trusted. Every answer is the same whether or not the
username exists.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from portal.locks import held_to_commit
from portal.models import SignInEvent

WINDOW = timedelta(minutes=30)
PAIR_LIMIT = 5
ADDRESS_LIMIT = 20
USERNAME_LIMIT = 10
DEVICE_LIMIT = 5
UNLOCK_MAILS_PER_HOUR = 3
UNLOCK_LINK_AGE = timedelta(minutes=30)
DEVICE_COOKIE_AGE = timedelta(days=180)
DEVICES_PER_BROWSER = 8
_DEVICE_SALT = "portal.signin.device"
_UNLOCK_SALT = "portal.signin.unlock"

Kind = SignInEvent.Kind


def _now() -> datetime:
    return timezone.now()


def normalise(username: str) -> str:
    return (username or "").strip().lower()[:150]


def device_cookie_name() -> str:
    return "portal_device" if settings.LOCAL else "__Host-portal_device"


def _devices(request: HttpRequest) -> list[list[str]]:
    raw = request.COOKIES.get(device_cookie_name(), "")
    try:
        value = signing.loads(raw, salt=_DEVICE_SALT, max_age=DEVICE_COOKIE_AGE)
    except signing.BadSignature:
        return []
    return [entry for entry in value if isinstance(entry, list) and len(entry) == 2]


def trusted_device(request: HttpRequest, username: str) -> str:
    """Return this browser's device id for the username, or "" if it is not trusted for it."""
    username = normalise(username)
    return next((device for name, device in _devices(request) if name == username), "")


def remember_device(request: HttpRequest, response: HttpResponse, username: str) -> None:
    """Mark this browser as one the username signs in from (after a full sign-in)."""
    username = normalise(username)
    entries = [e for e in _devices(request) if e[0] != username]
    entries.append([username, secrets.token_urlsafe(16)])
    value = signing.dumps(entries[-DEVICES_PER_BROWSER:], salt=_DEVICE_SALT)
    response.set_cookie(
        device_cookie_name(),
        value,
        max_age=int(DEVICE_COOKIE_AGE.total_seconds()),
        secure=not settings.LOCAL,
        httponly=True,
        samesite="Strict",
    )


def _count(since: datetime, **lookup) -> list[datetime]:
    return list(
        SignInEvent.objects.filter(kind=Kind.FAILURE, created_at__gt=since, **lookup)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )


def _wait(failures: list[datetime], limit: int, now: datetime) -> int:
    """Return the seconds until fewer than `limit` of the failures remain in the window."""
    if len(failures) < limit:
        return 0
    frees_at = failures[len(failures) - limit] + WINDOW
    return max(1, math.ceil((frees_at - now).total_seconds()))


@dataclass(frozen=True)
class Verdict:
    retry_after: int
    device: str


def _limits(username: str, address: str | None, device: str) -> list[tuple[dict, int]]:
    """Return the (lookup, limit) pairs that apply to this browser trying this username."""
    if device:
        return [({"username": username, "device": device}, DEVICE_LIMIT)]
    return [
        ({"username": username, "address": address, "device": ""}, PAIR_LIMIT),
        ({"address": address, "device": ""}, ADDRESS_LIMIT),
        ({"username": username, "device": ""}, USERNAME_LIMIT),
    ]


def check(request: HttpRequest, username: str, address: str | None) -> Verdict:
    """Return how long this browser must wait before trying the username (0: go ahead)."""
    username = normalise(username)
    now = _now()
    since = now - WINDOW
    device = trusted_device(request, username)
    limits = _limits(username, address, device)
    waits = [_wait(_count(since, **lookup), limit, now) for lookup, limit in limits]
    return Verdict(max(waits), device)


def reserve(username: str, address: str | None, device: str) -> bool:
    """Count this attempt as a failure before its password is checked; False: over a limit.

    Attempts sent at once all pass check() before any of them is counted; here each is
    written first and ranked by its row id among the failures of the window, so only those
    within every limit go on to the password (the others are refused and not counted). A
    right password then clears the reservation (clear_after_success); a wrong one keeps it.
    """
    username = normalise(username)
    # Reservations that count towards the same limits (same username or same address) run
    # one at a time: row ids are handed out before commit, so without the lock two attempts
    # can each miss the other's row and both pass the fifth place.
    with held_to_commit(f"sign-in:user:{username}", f"sign-in:address:{address or ''}"):
        now = _now()
        event = SignInEvent.objects.create(
            username=username, address=address, device=device, created_at=now
        )
        failures = SignInEvent.objects.filter(
            kind=Kind.FAILURE, created_at__gt=now - WINDOW, pk__lte=event.pk
        )
        for lookup, limit in _limits(username, address, device):
            if failures.filter(**lookup).count() > limit:
                event.delete()
                return False
    return True


def clear_after_success(username: str, address: str | None, device: str) -> None:
    """Forget the failures of this browser for the username once its owner signed in."""
    failures = SignInEvent.objects.filter(kind=Kind.FAILURE, username=normalise(username))
    if device:
        failures.filter(device=device).delete()
    else:
        failures.filter(address=address, device="").delete()


def paused_until(username: str) -> datetime | None:
    """Return until when new browsers are stopped for the username, if they are now."""
    now = _now()
    failures = _count(now - WINDOW, username=normalise(username), device="")
    wait = _wait(failures, USERNAME_LIMIT, now)
    return now + timedelta(seconds=wait) if wait else None


def lift(username: str) -> int:
    """Forget every recent failure of the username (its practice admin lifted the pause)."""
    deleted, _ = SignInEvent.objects.filter(
        kind=Kind.FAILURE, username=normalise(username)
    ).delete()
    return deleted


def may_send_unlock_mail(username: str) -> bool:
    since = _now() - timedelta(hours=1)
    sent = SignInEvent.objects.filter(
        kind=Kind.UNLOCK_MAIL, username=normalise(username), created_at__gt=since
    ).count()
    return sent < UNLOCK_MAILS_PER_HOUR


def unlock_token(user) -> str:
    """Return the signed value of an emailed unlock link for the user (single use)."""
    SignInEvent.objects.create(
        kind=Kind.UNLOCK_MAIL, username=normalise(user.get_username()), created_at=_now()
    )
    return signing.dumps({"u": user.pk, "n": secrets.token_urlsafe(16)}, salt=_UNLOCK_SALT)


def redeem_unlock_token(token: str, *, consume: bool) -> int | None:
    """Return the user id an unlock link is for, if valid and unused; consume it if asked."""
    try:
        value = signing.loads(token, salt=_UNLOCK_SALT, max_age=UNLOCK_LINK_AGE)
    except signing.BadSignature:
        return None
    nonce = str(value.get("n", ""))
    used = SignInEvent.objects.filter(kind=Kind.UNLOCK_USED, device=nonce)
    if not nonce or used.exists():
        return None
    if consume:
        SignInEvent.objects.create(
            kind=Kind.UNLOCK_USED, username="", device=nonce, created_at=_now()
        )
    return value.get("u")
