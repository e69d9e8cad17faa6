"""Authenticator (TOTP) seeds encrypted at rest with the vault's key-encryption keys.

django-otp keeps a device's seed in TOTPDevice.key as hex. Here the column holds
"v1:<key id>:<nonce and AES-256-GCM ciphertext, base64>", bound to the user it belongs to,
so a copy of the database alone yields no working code; `manage.py rotate_keys` re-seals
every seed under the current key. TOTPDevice.bin_key, which everything in django-otp
reads the seed through, opens it.
"""

from __future__ import annotations

from django.conf import settings

from portal.vault import values

PREFIX = "v1:"


def _ad(key_id: str, user_id: int) -> bytes:
    return f"portal-totp|{key_id}|{user_id}".encode()


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def seal(seed: bytes, user_id: int, key_id: str | None = None) -> str:
    """Return the column value holding `seed` sealed under a key (the current one by default)."""
    return PREFIX + values.seal_value(seed, lambda key: _ad(key, user_id), key_id)


def open_seed(value: str, user_id: int) -> bytes:
    """Return the seed a column value holds; raise VaultIntegrityError if it does not open."""
    if not is_sealed(value):
        return bytes.fromhex(value)
    return values.open_value(value[len(PREFIX) :], lambda key: _ad(key, user_id))


def key_id_of(value: str) -> str | None:
    return values.key_id_of(value[len(PREFIX) :]) if is_sealed(value) else None


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
