"""Who is asking: the software token in the Authorization header, checked on every request.

Same rules as the recipient's web pages: the share's expiry, revocation and lock are read
fresh each time; wrong or missing tokens are throttled per address like failed
verifications (the delays, then 429 with Retry-After); every refusal is audited.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

import audit
from audit.models import Action, Outcome
from audit.services import client_ip
from portal.access import Scope
from portal.rows import fetch_row
from sharing import throttle
from sharing.dicomweb.tokens import find_token
from sharing.models import ShareLink, SoftwareToken

REALM = 'Bearer realm="image portal", Basic realm="image portal"'


@dataclass
class Caller:
    """A request admitted through a usable token of an active share."""

    token: SoftwareToken
    share: ShareLink
    scope: Scope

    def detail(self, **more) -> dict:
        return {"via": "dicomweb", "software_token": str(self.token.code), **more}


class Refused(Exception):
    """Raised with the response to send instead of data."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response


def presented_token(request: HttpRequest) -> str:
    """Return the secret from 'Bearer <t>' or 'Basic base64(any:<t>)', else ''."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""


def _error(status: int, message: str, **headers: str) -> HttpResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


def _deny(request: HttpRequest, reason: str, share: ShareLink | None = None) -> None:
    audit.record(
        Action.ACCESS_DENIED,
        request=request,
        share=share,
        outcome=Outcome.DENIED,
        detail={"via": "dicomweb", "reason": reason},
    )


def authenticate(request: HttpRequest) -> Caller:
    """Return the caller, or raise Refused with a 401, 410, 423 or 429 answer."""
    address = client_ip(request)
    state = throttle.address_state(address)
    if state.retry_after:
        _deny(request, "rate_limited")
        raise Refused(
            _error(
                429, "Too many failed attempts; wait.", **{"Retry-After": str(state.retry_after)}
            )
        )
    raw = presented_token(request)
    if raw and state.too_soon:
        # Not judged and not counted, as on the web form: the token may well be right (a
        # viewer fetching several things at once just after one typo must not lock itself,
        # or its whole network, out). Judging it would let a guesser skip the wait.
        _deny(request, "too_soon")
        raise Refused(
            _error(429, "Wait a moment and try again.", **{"Retry-After": str(state.wait_seconds)})
        )
    token = find_token(raw) if raw else None
    if token is None:
        if raw:
            throttle.record_address_failure(address)
        _deny(request, "unknown" if raw else "missing")
        raise Refused(_error(401, "A valid access token is needed.", **{"WWW-Authenticate": REALM}))
    share = fetch_row(ShareLink, "id", token.share_id)
    now = timezone.now()
    if share is None or share.status != ShareLink.Status.ACTIVE:
        status = share.status if share is not None else "gone"
        _deny(request, status, share)
        code = 423 if status == ShareLink.Status.LOCKED else 410
        raise Refused(_error(code, "This link can no longer be used."))
    if token.revoked_at is not None or token.expires_at <= now:
        _deny(request, "token_revoked" if token.revoked_at else "token_expired", share)
        raise Refused(_error(410, "This access token can no longer be used."))
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        SoftwareToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return Caller(token, share, Scope(share=share))
