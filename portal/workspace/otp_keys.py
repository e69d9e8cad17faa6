"""Authenticator (TOTP) seeds encrypted at rest with the vault's key-encryption keys.

django-otp keeps a device's seed in TOTPDevice.key as hex. Here the column holds
"v1:<key id>:<nonce and AES-256-GCM ciphertext, base64>", bound to the user it belongs to,
so a copy of the database alone yields no working code; `manage.py rotate_keys` re-seals
every seed under the current key. TOTPDevice.bin_key, which everything in django-otp
reads the seed through, opens it.
"""

from __future__ import annotations

import base64
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from portal.vault.crypto import VaultIntegrityError

PREFIX = "v1:"
_NONCE = 12


def _ad(key_id: str, user_id: int) -> bytes:
    return f"portal-totp|{key_id}|{user_id}".encode()


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def seal(seed: bytes, user_id: int, key_id: str | None = None) -> str:
    """Return the column value holding `seed` sealed under a key (the current one by default)."""
    key_id = key_id or settings.PORTAL_CURRENT_KEY_ID
    nonce = secrets.token_bytes(_NONCE)
    sealed = AESGCM(settings.PORTAL_KEYS[key_id]).encrypt(nonce, seed, _ad(key_id, user_id))
    return f"{PREFIX}{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"


def open_seed(value: str, user_id: int) -> bytes:
    """Return the seed a column value holds; raise VaultIntegrityError if it does not open."""
    if not is_sealed(value):
        return bytes.fromhex(value)
    key_id, _, encoded = value[len(PREFIX) :].partition(":")
    kek = settings.PORTAL_KEYS.get(key_id)
    if kek is None:
        raise VaultIntegrityError(f"authenticator seed sealed under unknown key id {key_id}")
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    try:
        return AESGCM(kek).decrypt(raw[:_NONCE], raw[_NONCE:], _ad(key_id, user_id))
    except InvalidTag:
        raise VaultIntegrityError("authenticator seed failed authentication") from None


def key_id_of(value: str) -> str | None:
    return value[len(PREFIX) :].partition(":")[0] if is_sealed(value) else None


def _seal_before_save(sender, instance, **kwargs) -> None:
    if instance.key and not is_sealed(instance.key):
        instance.key = seal(bytes.fromhex(instance.key), instance.user_id)


def install() -> None:
    """Make django-otp read seeds through open_seed and seal every seed it saves."""
    from django.db.models.signals import pre_save
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.bin_key = property(lambda device: open_seed(device.key, device.user_id))
    pre_save.connect(_seal_before_save, sender=TOTPDevice, dispatch_uid="portal-seal-totp")


def reseal_all() -> int:
    """Re-seal every seed not under the current key; return how many changed."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    current = settings.PORTAL_CURRENT_KEY_ID
    changed = 0
    for device in TOTPDevice.objects.only("pk", "key", "user_id").iterator():
        if key_id_of(device.key) != current:
            value = seal(open_seed(device.key, device.user_id), device.user_id)
            TOTPDevice.objects.filter(pk=device.pk).update(key=value)
            changed += 1
    return changed
