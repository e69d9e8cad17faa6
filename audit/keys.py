"""The access history's keys, kept outside the database: the chain key and the checkpoint key.

PORTAL_AUDIT_KEY (32 random bytes, base64) keys the HMAC that chains the events, so nobody
holding only the database can recompute the chain after rewriting it. PORTAL_AUDIT_SIGNING_KEY
(an Ed25519 private key: 32 random bytes, base64) signs the daily checkpoints written to the
object store; its public half lets an auditor check them without it. On a laptop both are
generated once into the data directory, like the vault's keys; production refuses to start
without them.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from portal.vault.keys import _read_or_create

GENERATE = "python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())'"


def _decode(name: str, value: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not valid base64.") from exc
    if len(raw) != 32:
        raise ImproperlyConfigured(f"{name} must be 32 bytes (base64).")
    return raw


def load_audit_key(name: str, value: str | None, data_dir: Path, local: bool) -> bytes:
    """Return a 32-byte key from the environment, or on a laptop from data_dir (made once)."""
    if value:
        return _decode(name, value)
    if not local:
        raise ImproperlyConfigured(
            f"{name} is not set. Production refuses to start without the access history's "
            f"keys: set {name} (or {name}_FILE) to 32 random bytes, base64. Generate one "
            f"with: {GENERATE}"
        )
    stored = _read_or_create(
        data_dir / name.lower(), lambda: base64.b64encode(secrets.token_bytes(32)).decode()
    )
    return _decode(name, stored)
