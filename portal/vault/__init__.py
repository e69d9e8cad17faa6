"""Encryption at rest: keys (keys.py), the STREAM format (crypto.py), stored objects (blobs.py).

Callers use the object functions from here: `vault.store(...)`, `vault.iter_range(...)`,
`vault.open_blob(...)`. They are loaded on first use because settings import `vault.keys`
before Django's models can be imported.
"""

from __future__ import annotations

from typing import Any

from portal.vault.crypto import VaultIntegrityError

__all__ = [
    "VaultIntegrityError",
    "store",
    "seal",
    "make_durable",
    "discard_unsaved",
    "store_bytes",
    "iter_range",
    "read_bytes",
    "open_blob",
    "rewrap",
    "verify",
    "shred",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from portal.vault import blobs

        return getattr(blobs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
