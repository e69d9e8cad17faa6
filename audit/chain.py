"""The keyed hash chain: each event's HMAC covers its fields and its predecessor's hash.

The key (settings.PORTAL_AUDIT_KEY) lives outside the database, so someone holding only the
database can neither forge an event nor rewrite the chain after an edit. Each event also
carries its position (seq), and the chain head's own HMAC binds the length to the last hash,
so removing the newest events is caught too. Plain functions, no queries.
"""

from __future__ import annotations

import hmac
import json
import uuid
from datetime import UTC
from typing import Any

from django.conf import settings

GENESIS = "0" * 64

# The fields an event's hash covers, in this order; verification reads exactly these.
HASHED_FIELDS = (
    "seq",
    "code",
    "created_at",
    "action",
    "outcome",
    "user_id",
    "share_code",
    "practice_id",
    "patient_id",
    "object_type",
    "object_code",
    "ip_address",
    "user_agent",
    "detail",
)

dumps = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
).encode


def _text(value: str | None) -> str:
    return "-" if value is None else f"{len(value)}:{value}"


def _int(value: int | None) -> str:
    return "-" if value is None else str(value)


def canonical_detail(detail: Any) -> str:
    """Return the detail as sorted, compact JSON, as it reads back from either database."""
    return dumps(json.loads(json.dumps(detail)))


def canonical_prefix(values: tuple[Any, ...]) -> str:
    """Return every hashed field but the detail, each length-prefixed, joined by '|'.

    The same string is built by the database in prefix_sql(), so verification reads one
    column a row instead of converting each field in Python.
    """
    seq, code, at, action, outcome, user, share, practice, patient, otype, ocode, ip, ua = values
    at = at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    parts = (
        str(seq), _text(uuid_hex(code)), _text(at), _text(action), _text(outcome), _int(user),
        _text(uuid_hex(share)), _int(practice), _int(patient), _text(otype), _text(ocode),
        _text(str(ip) if ip is not None else None), _text(ua),
    )  # fmt: skip
    return "|".join(parts)


def uuid_hex(value: Any) -> str | None:
    if value is None:
        return None
    return value.hex if isinstance(value, uuid.UUID) else uuid.UUID(str(value)).hex


def canonical(values: tuple[Any, ...]) -> bytes:
    """Return the bytes hashed for one event, from its HASHED_FIELDS values in order."""
    return (canonical_prefix(values[:-1]) + "|" + canonical_detail(values[-1])).encode()


def _sql_text(expr: str, vendor: str) -> str:
    length = f"length({expr})"
    return f"CASE WHEN {expr} IS NULL THEN '-' ELSE {_cast(length, vendor)} || ':' || {expr} END"


def _cast(expr: str, vendor: str) -> str:
    return f"CAST({expr} AS TEXT)" if vendor == "sqlite" else f"({expr})::text"


def _sql_int(expr: str, vendor: str) -> str:
    return f"COALESCE({_cast(expr, vendor)}, '-')"


def prefix_sql(vendor: str) -> str:
    """Return the SQL expression that builds canonical_prefix() from a stored row."""
    if vendor == "postgresql":
        code = "replace(code::text, '-', '')"
        share = "replace(share_code::text, '-', '')"
        at = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        ip = "host(ip_address)"
    else:
        code, share, ip = "code", "share_code", "ip_address"
        at = "CASE WHEN length(created_at) = 19 THEN created_at || '.000000' ELSE created_at END"
    parts = [
        _cast("seq", vendor), _sql_text(code, vendor), _sql_text(at, vendor),
        _sql_text("action", vendor), _sql_text("outcome", vendor), _sql_int("user_id", vendor),
        _sql_text(share, vendor), _sql_int("practice_id", vendor),
        _sql_int("patient_id", vendor), _sql_text("object_type", vendor),
        _sql_text("object_code", vendor), _sql_text(ip, vendor), _sql_text("user_agent", vendor),
    ]  # fmt: skip
    return " || '|' || ".join(parts)


def mac_of(prev_hash: str, message: bytes, key: bytes) -> str:
    return hmac.digest(key, prev_hash.encode() + b"\n" + message, "sha256").hex()


def event_mac(prev_hash: str, values: tuple[Any, ...], key: bytes | None = None) -> str:
    """Return the chain hash of one event: HMAC-SHA256 over its predecessor and fields."""
    return mac_of(prev_hash, canonical(values), key or settings.PORTAL_AUDIT_KEY)


def head_mac(seq: int, last_hash: str, key: bytes | None = None) -> str:
    """Return the HMAC that binds the chain's length to its last hash."""
    key = key or settings.PORTAL_AUDIT_KEY
    return hmac.digest(key, f"head\n{seq}\n{last_hash}".encode(), "sha256").hex()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
