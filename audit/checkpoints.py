"""Signed checkpoints of the access history, kept in the object store, outside the database.

A checkpoint names the chain's length, its last hash and the time, signed with Ed25519 under
settings.PORTAL_AUDIT_SIGNING_KEY. Verification compares the chain with every checkpoint, so a
database restored from an old copy, or one whose newest events were removed together with its
head, is caught. On S3 buckets with object lock the checkpoint is written under a compliance
retention, so nobody can remove it before it expires.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, storages
from django.core.mail import send_mail
from django.utils import timezone

log = logging.getLogger(__name__)
KIND = "portal-access-history-checkpoint"
LOCK_YEARS = 7


def _prefix() -> str:
    return getattr(settings, "PORTAL_AUDIT_CHECKPOINT_PREFIX", "audit-checkpoints")


def _private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(settings.PORTAL_AUDIT_SIGNING_KEY)


def public_key_b64() -> str:
    """Return the checkpoint key's public half, which an auditor may keep to check them."""
    raw = _private_key().public_key().public_bytes_raw()
    return base64.b64encode(raw).decode()


def _signed_part(seq: int, last_hash: str, at: str) -> bytes:
    body = {"kind": KIND, "seq": seq, "last_hash": last_hash, "at": at}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class Checkpoint:
    name: str
    seq: int
    last_hash: str
    at: str
    signature: str
    valid: bool = True

    def document(self) -> bytes:
        """Return the stored JSON: the signed fields, the signature and the public key."""
        body = {
            "kind": KIND,
            "seq": self.seq,
            "last_hash": self.last_hash,
            "at": self.at,
            "signature": self.signature,
            "public_key": public_key_b64(),
        }
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()


def make(seq: int, last_hash: str, now: datetime | None = None) -> Checkpoint:
    """Return a signed checkpoint of a chain of `seq` events ending in `last_hash`."""
    now = now or timezone.now()
    at = now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    signature = base64.b64encode(_private_key().sign(_signed_part(seq, last_hash, at))).decode()
    name = f"{_prefix()}/{now:%Y%m%dT%H%M%S%f}-{seq}.json"
    return Checkpoint(name=name, seq=seq, last_hash=last_hash, at=at, signature=signature)


def _locked_bucket(storage) -> bool:
    client = storage.connection.meta.client
    try:
        config = client.get_object_lock_configuration(Bucket=storage.bucket_name)
    except client.exceptions.ClientError:
        return False
    return config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"


def write(checkpoint: Checkpoint) -> str:
    """Store a checkpoint in the object store; return how it was kept."""
    storage = storages["vault"]
    data = checkpoint.document()
    if hasattr(storage, "bucket") and _locked_bucket(storage):
        storage.bucket.put_object(
            Key=checkpoint.name,
            Body=data,
            ContentType="application/json",
            ChecksumAlgorithm="SHA256",
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=timezone.now() + timedelta(days=365 * LOCK_YEARS),
        )
        return "object lock (compliance)"
    saved = storage.save(checkpoint.name, ContentFile(data))
    if saved != checkpoint.name:
        raise RuntimeError("the object store renamed a checkpoint")
    if isinstance(storage, FileSystemStorage):
        os.chmod(storage.path(saved), 0o400)
    return "stored"


def parse(name: str, raw: bytes) -> Checkpoint:
    """Return the checkpoint in a stored document, with `valid` set by its signature."""
    try:
        body = json.loads(raw)
        checkpoint = Checkpoint(
            name=name.rsplit("/", 1)[-1],
            seq=int(body["seq"]),
            last_hash=str(body["last_hash"]),
            at=str(body["at"]),
            signature=str(body["signature"]),
        )
        signature = base64.b64decode(checkpoint.signature)
        part = _signed_part(checkpoint.seq, checkpoint.last_hash, checkpoint.at)
        _private_key().public_key().verify(signature, part)
    except (ValueError, KeyError, TypeError, InvalidSignature):
        return Checkpoint(name=name.rsplit("/", 1)[-1], seq=0, last_hash="", at="", signature="",
                          valid=False)  # fmt: skip
    return checkpoint


def load_all() -> list[Checkpoint]:
    """Return every checkpoint in the object store, oldest first."""
    storage = storages["vault"]
    try:
        _dirs, files = storage.listdir(_prefix())
    except FileNotFoundError:
        return []
    found = []
    for filename in sorted(files):
        if not filename.endswith(".json"):
            continue
        with storage.open(f"{_prefix()}/{filename}", "rb") as fh:
            found.append(parse(filename, fh.read()))
    return found


def email(checkpoint: Checkpoint) -> int:
    """Send the checkpoint to the privacy officers named in settings; return how many."""
    recipients = list(settings.PORTAL_AUDIT_CHECKPOINT_EMAILS)
    if not recipients:
        return 0
    body = (
        "The portal's access history was verified and this checkpoint was written to the "
        "object store. Keep this message: `manage.py verify_audit` compares the history with "
        "every checkpoint, and the signature can be checked with the public key below.\n\n"
        + checkpoint.document().decode()
    )
    send_mail(
        f"Access history checkpoint: {checkpoint.seq} events, {checkpoint.at}",
        body,
        settings.DEFAULT_FROM_EMAIL,
        recipients,
    )
    return len(recipients)
