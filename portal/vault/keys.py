"""Load the secret key and the vault's key-encryption keys (environment or data directory)."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def keep_private(data_dir: Path) -> None:
    """Make everything this process writes its user's own: files 0600, folders 0700.

    Laptop mode keeps its database (and SQLite's -wal and -shm files), mail files, keys and
    vault in data_dir. A data folder made before this rule is tightened too.
    """
    os.umask(0o077)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    for path in data_dir.glob("portal.sqlite3*"):
        path.chmod(0o600)


def _read_or_create(path: Path, make: callable) -> str:
    """Return the file's content, creating it (mode 0600) on first use so a restart keeps it."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def parse_keys(spec: str) -> dict[str, bytes]:
    """Parse 'id:base64,id:base64' (first is current) into an ordered dict of 32-byte keys."""
    keys: dict[str, bytes] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        key_id, sep, encoded = part.partition(":")
        if not sep or not key_id:
            raise ImproperlyConfigured("PORTAL_KEYS must look like 'k1:<base64>,k0:<base64>'.")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError as exc:
            raise ImproperlyConfigured(f"PORTAL_KEYS: key {key_id!r} is not valid base64.") from exc
        if len(raw) != 32:
            raise ImproperlyConfigured(f"PORTAL_KEYS: key {key_id!r} must be 32 bytes.")
        keys[key_id] = raw
    if not keys:
        raise ImproperlyConfigured("PORTAL_KEYS is empty.")
    return keys


def format_keys(keys: dict[str, bytes]) -> str:
    """Return the PORTAL_KEYS form of an ordered key dict."""
    return ",".join(f"{k}:{base64.b64encode(v).decode()}" for k, v in keys.items())


def load_keys(spec: str | None, data_dir: Path, local: bool) -> dict[str, bytes]:
    """Return the KEKs: from PORTAL_KEYS, or on a laptop from data_dir/keys (made once)."""
    if spec:
        return parse_keys(spec)
    if not local:
        raise ImproperlyConfigured(
            "PORTAL_KEYS is not set: give the vault's key-encryption keys as "
            "PORTAL_KEYS='k1:<32 random bytes, base64>' (or PORTAL_KEYS_FILE); make one with "
            "python -c 'import base64,os;print(\"k1:\"+base64.b64encode(os.urandom(32)).decode())'"
        )
    stored = _read_or_create(
        data_dir / "keys", lambda: format_keys({"local1": secrets.token_bytes(32)})
    )
    return parse_keys(stored)


def load_secret_key(value: str | None, data_dir: Path, local: bool) -> str:
    """Return SECRET_KEY from the environment, or on a laptop from data_dir/secret_key."""
    if value:
        return value
    if not local:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: give it a long random value (or SECRET_KEY_FILE), e.g. "
            "python -c 'import secrets;print(secrets.token_urlsafe(50))'"
        )
    return _read_or_create(data_dir / "secret_key", lambda: secrets.token_urlsafe(50))
