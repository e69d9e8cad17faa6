"""Small values sealed with the key-encryption key: authenticator seeds, kept search criteria.

A value reads "<key id>:<nonce and AES-256-GCM ciphertext, base64url>". The associated data
names what the value belongs to (a user, a search), so a value copied to another row or
session does not open there; `manage.py rotate_keys` can tell which key sealed it.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from portal.vault.crypto import VaultIntegrityError

NONCE_SIZE = 12
# Given the key id, returns the associated data that binds a value to its owner.
Binding = Callable[[str], bytes]


def seal_value(data: bytes, binding: Binding, key_id: str | None = None) -> str:
    """Return data sealed under a key (the current one by default), bound by binding."""
    key_id = key_id or settings.PORTAL_CURRENT_KEY_ID
    nonce = secrets.token_bytes(NONCE_SIZE)
    sealed = AESGCM(settings.PORTAL_KEYS[key_id]).encrypt(nonce, data, binding(key_id))
    return f"{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"


def key_id_of(value: str) -> str:
    return value.partition(":")[0]


def open_value(value: str, binding: Binding) -> bytes:
    """Return what seal_value sealed; raise VaultIntegrityError if it does not open here."""
    key_id, _, encoded = value.partition(":")
    kek = settings.PORTAL_KEYS.get(key_id)
    if kek is None:
        raise VaultIntegrityError(f"value sealed under unknown key id {key_id}")
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        return AESGCM(kek).decrypt(raw[:NONCE_SIZE], raw[NONCE_SIZE:], binding(key_id))
    except (InvalidTag, binascii.Error, ValueError):
        raise VaultIntegrityError("sealed value failed authentication") from None
