"""The recipient's session: bound to one link, checked on every request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

SESSION_KEY = "share_link"
VERIFIED_KEY = "share_verified"
SEEN_KEY = "share_seen"
_KEYS = (SESSION_KEY, VERIFIED_KEY, SEEN_KEY)
# The last-seen stamp is rewritten only once it is this old, so a slice request saves no session.
# The stamp trails real activity by less than this: the idle end can come this much early,
# never late.
SEEN_RESOLUTION_SECONDS = 30


def _now() -> datetime:
    return timezone.now()


def bind(request: HttpRequest, share) -> None:
    """Put a not yet verified link into a fresh session, dropping any earlier share."""
    clear(request)
    request.session.cycle_key()
    request.session[SESSION_KEY] = str(share.code)


def pending_code(request: HttpRequest) -> str | None:
    """Return the code of the link this session opened, verified or not."""
    return request.session.get(SESSION_KEY)


def mark_verified(request: HttpRequest) -> None:
    """Record a passed verification under a new session key (no fixation)."""
    request.session.cycle_key()
    stamp = _now().timestamp()
    request.session[VERIFIED_KEY] = stamp
    request.session[SEEN_KEY] = stamp


def clear(request: HttpRequest) -> None:
    """Forget the share in this session, leaving any staff sign-in alone."""
    for key in _KEYS:
        request.session.pop(key, None)


def end_verification(request: HttpRequest) -> None:
    """Drop the verification but remember the link.

    The recipient then lands on /s/ again: the password page after an idle timeout, or the
    page saying the link has expired, was revoked or is locked, instead of a bare 404.
    """
    for key in (VERIFIED_KEY, SEEN_KEY):
        request.session.pop(key, None)


def verified_share(request: HttpRequest):
    """Return the ShareLink this session verified, if still valid; else None.

    Checks expiry, revocation, lock and the idle and absolute timeouts on every call.
    """
    return resolve(request)[0]


def resolve(request: HttpRequest, series_code: UUID | None = None) -> tuple[Any, Any]:
    """Return (the verified share or None, the owners of series_code or None).

    The link row is read on every request, fresh: expiry, revocation, lock and download
    counts are always current. With series_code the series' owner row comes in the same
    round trip (portal.access decides with it). Practice, patient and study load when used.
    """
    session = getattr(request, "session", None)
    if session is None or VERIFIED_KEY not in session or SESSION_KEY not in session:
        return None, None
    cached = getattr(request, "_verified_share", None)
    if cached is not None and series_code is None:
        return cached, None
    from portal.access import fetch_row_and_series_owner
    from portal.rows import fetch_row
    from sharing.models import ShareLink

    now = _now()
    verified_at = datetime.fromtimestamp(session[VERIFIED_KEY], tz=UTC)
    seen_at = datetime.fromtimestamp(session.get(SEEN_KEY, 0), tz=UTC)
    idle = timedelta(minutes=settings.RECIPIENT_IDLE_TIMEOUT_MINUTES)
    absolute = timedelta(hours=settings.RECIPIENT_ABSOLUTE_SESSION_HOURS)
    share = owner = None
    if now - seen_at <= idle and now - verified_at <= absolute:
        if series_code is None:
            share = fetch_row(ShareLink, "code", session[SESSION_KEY])
        else:
            share, owner = fetch_row_and_series_owner(
                ShareLink, "code", session[SESSION_KEY], series_code
            )
    if (
        share is None
        or share.revoked_at is not None
        or share.locked_at is not None
        or share.expires_at <= now
    ):
        end_verification(request)
        return None, None
    if (now - seen_at).total_seconds() >= SEEN_RESOLUTION_SECONDS:
        session[SEEN_KEY] = now.timestamp()
    request._verified_share = share
    return share, owner
