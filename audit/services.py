"""audit.record(): the one writer of the access history."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.models import AccessEvent, ChainHead, Outcome

GENESIS = "0" * 64
_FORBIDDEN_DETAIL_KEYS = {"token", "password", "code", "otp", "secret"}


def client_ip(request: HttpRequest | None) -> str | None:
    """Return the client's address, as seen by this server or by the trusted proxy in front.

    Behind a proxy (USE_X_FORWARDED_FOR), only the entries the trusted proxies appended to
    X-Forwarded-For count: the one PORTAL_TRUSTED_PROXY_HOPS from the right. Anything further
    left was written by the client and is ignored, so throttles cannot be dodged with it.
    """
    if request is None:
        return None
    from django.conf import settings

    address = request.META.get("REMOTE_ADDR") or None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.USE_X_FORWARDED_FOR and forwarded:
        entries = [part.strip() for part in forwarded.split(",") if part.strip()]
        hops = settings.PORTAL_TRUSTED_PROXY_HOPS
        if len(entries) >= hops:
            address = entries[-hops]
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None


def event_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """Return the chain hash of one event from its fields and its predecessor's hash."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _hashed_fields(event: AccessEvent) -> dict[str, Any]:
    return {
        "code": str(event.code),
        "created_at": event.created_at.isoformat(),
        "action": event.action,
        "outcome": event.outcome,
        "user": event.user_id,
        "share": str(event.share_code) if event.share_code else None,
        "practice": event.practice_id,
        "patient": event.patient_id,
        "object_type": event.object_type,
        "object_code": event.object_code,
        "ip": event.ip_address,
        "user_agent": event.user_agent,
        "detail": event.detail,
    }


def record(
    action: str,
    *,
    request: HttpRequest | None = None,
    user=None,
    share=None,
    practice=None,
    patient=None,
    obj=None,
    outcome: str = Outcome.OK,
    detail: dict[str, Any] | None = None,
) -> AccessEvent:
    """Append one event; raise if it cannot be written, so the caller serves nothing."""
    detail = dict(detail or {})
    bad = _FORBIDDEN_DETAIL_KEYS.intersection(detail)
    if bad:
        raise ValueError(f"audit detail may not carry secrets: {sorted(bad)}")
    if user is None and request is not None and getattr(request, "user", None) is not None:
        if request.user.is_authenticated:
            user = request.user
    if share is not None:
        practice = practice or share.practice
        patient = patient or share.patient
    event = AccessEvent(
        action=action,
        outcome=outcome,
        user=user,
        share_code=getattr(share, "code", None),
        practice=practice,
        patient=patient,
        object_type=type(obj).__name__.lower() if obj is not None else "",
        object_code=str(getattr(obj, "code", "")) if obj is not None else "",
        ip_address=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:300] if request else ""),
        detail=detail,
    )
    with transaction.atomic():
        head, _ = ChainHead.objects.select_for_update().get_or_create(
            pk=1, defaults={"last_hash": GENESIS}
        )
        event.created_at = timezone.now()
        event.prev_hash = head.last_hash
        event.hash = event_hash(event.prev_hash, _hashed_fields(event))
        event.save(force_insert=True)
        head.last_hash = event.hash
        head.save(update_fields=["last_hash"])
    return event


def verify_chain() -> tuple[bool, int, str]:
    """Recompute the chain in order; return (ok, events checked, first problem)."""
    prev = GENESIS
    count = 0
    for event in AccessEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.prev_hash != prev:
            return False, count, f"event {event.code} does not follow its predecessor"
        if event_hash(prev, _hashed_fields(event)) != event.hash:
            return False, count, f"event {event.code} was altered"
        prev = event.hash
        count += 1
    return True, count, ""
