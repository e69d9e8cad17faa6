"""audit.record(): the one writer of the access history."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest

from audit.append import hashed_values
from audit.chain import GENESIS
from audit.group import append
from audit.models import AccessEvent, Outcome

__all__ = ["GENESIS", "client_ip", "hashed_values", "record", "verify_chain"]
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
        parsed = ipaddress.ip_address(address) if address else None
    except ValueError:
        return None
    if parsed is None:
        return None
    # A dual-stack server sees IPv4 clients as ::ffff:a.b.c.d; name them as IPv4.
    return str(getattr(parsed, "ipv4_mapped", None) or parsed)


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
    """Append one event; raise if it cannot be written, so the caller serves nothing.

    The chain head is the last lock a request takes (see sharing.services.lock_link for
    the order): a caller may hold a share link's row, never the other way round.
    """
    detail = dict(detail or {})
    bad = _FORBIDDEN_DETAIL_KEYS.intersection(detail)
    if bad:
        raise ValueError(f"audit detail may not carry secrets: {sorted(bad)}")
    if user is None and request is not None and getattr(request, "user", None) is not None:
        if request.user.is_authenticated:
            user = request.user
    # Ids, not rows: a link's practice and patient need no query of their own (a download
    # records its start while it holds the link's row lock).
    practice_id = getattr(practice, "pk", None)
    patient_id = getattr(patient, "pk", None)
    if share is not None:
        practice_id = practice_id or share.practice_id
        source_patient_id = getattr(share, "source_patient_id", None)
        if source_patient_id is not None:
            # A link to a de-identified copy: what it discloses was made from this patient.
            patient_id = source_patient_id
            detail.setdefault("deidentified", True)
        else:
            patient_id = patient_id or share.patient_id
    event = AccessEvent(
        action=action,
        outcome=outcome,
        user=user,
        share_code=getattr(share, "code", None),
        practice_id=practice_id,
        patient_id=patient_id,
        object_type=type(obj).__name__.lower() if obj is not None else "",
        object_code=str(getattr(obj, "code", "")) if obj is not None else "",
        ip_address=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:300] if request else ""),
        detail=detail,
    )
    append(connections[DEFAULT_DB_ALIAS], event)
    return event


def verify_chain() -> tuple[bool, int, str]:
    """Check the whole chain (see audit.verify); return (ok, events checked, first problem)."""
    from audit.verify import verify

    report = verify(checkpoints=False)
    return report.ok, report.count, report.problem
