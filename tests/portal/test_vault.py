"""The vault against every storage backend: round trips, ranges, tampering, keys, shredding."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import random
import secrets
import uuid
from datetime import timedelta
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext

from portal import vault
from portal.models import StoredObject
from portal.vault import crypto, housekeeping
from tests.portal.s3server import put_raw, raw_objects, s3_storage_settings

SEG = crypto.SEGMENT_SIZE
SECRET_MARKER = b"PATIENT-NAME-Zoe-Quinlan-1977"


def _payload(size: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    body = rng.randbytes(size)
    if size > len(SECRET_MARKER) * 2:
        body = SECRET_MARKER + body[len(SECRET_MARKER) :]
    return body


class VaultContractMixin:
    """Behaviour every storage backend must show; subclasses define raw() and overwrite()."""

    def test_a_file_without_a_row_is_an_orphan_and_can_be_cleaned(self) -> None:
        kept = vault.store(io.BytesIO(b"kept"))
        lost = vault.seal(io.BytesIO(b"lost when the process died"))
        found = [f.name for f in housekeeping.orphans(timedelta(0))]
        self.assertEqual(found, [lost.storage_name])
        self.assertEqual(housekeeping.orphans(timedelta(hours=1)), [])  # maybe still ingesting
        out = io.StringIO()
        call_command("verify_storage", "--delete-orphans", "--orphan-age-minutes", "0", stdout=out)
        self.assertIn("deleted 1 orphaned files", out.getvalue())
        self.assertNotIn(lost.storage_name, self.raw())
        self.assertEqual(vault.read_bytes(kept), b"kept")

    def test_it_round_trips_boundary_sizes(self) -> None:
        for size in (0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG + 17):
            with self.subTest(size=size):
                data = _payload(size, size)
                obj = vault.store(io.BytesIO(data))
                self.assertEqual(vault.read_bytes(obj), data)
                self.assertEqual(obj.sha256, hashlib.sha256(data).hexdigest())
                self.assertEqual(obj.plain_size, size)

    def test_it_reads_random_ranges(self) -> None:
        data = _payload(3 * SEG + 1234, 7)
        obj = vault.store(io.BytesIO(data))
        rng = random.Random(3)
        for _ in range(40):
            a = rng.randrange(0, len(data))
            b = rng.randrange(a, min(len(data), a + SEG * 2) + 1)
            self.assertEqual(vault.read_bytes(obj, a, b), data[a:b])

    def test_it_stores_no_plaintext(self) -> None:
        vault.store(io.BytesIO(_payload(SEG + 5)))
        blobs = self.raw()
        self.assertTrue(blobs)
        for name, blob in blobs.items():
            self.assertNotIn(SECRET_MARKER, blob, name)
            self.assertNotIn(SECRET_MARKER[:12], blob, name)

    def test_it_detects_a_flipped_bit_in_storage(self) -> None:
        obj = vault.store(io.BytesIO(_payload(SEG + 100)))
        blob = bytearray(self.raw()[obj.storage_name])
        blob[crypto.HEADER_SIZE + SEG // 2] ^= 0x01
        self.overwrite(obj.storage_name, bytes(blob))
        with self.assertRaisesRegex(vault.VaultIntegrityError, "authentication"):
            vault.read_bytes(obj)
        with self.assertRaises(CommandError):
            call_command("verify_storage", stdout=io.StringIO(), stderr=io.StringIO())

    def test_it_detects_truncation(self) -> None:
        obj = vault.store(io.BytesIO(_payload(2 * SEG + 3)))
        blob = self.raw()[obj.storage_name]
        self.overwrite(obj.storage_name, blob[: -(SEG // 2)])
        with self.assertRaises(vault.VaultIntegrityError):
            vault.read_bytes(obj)

    def test_it_refuses_an_object_swapped_for_another(self) -> None:
        a = vault.store(io.BytesIO(_payload(500, 1)))
        b = vault.store(io.BytesIO(_payload(500, 2)))
        self.overwrite(a.storage_name, self.raw()[b.storage_name])
        with self.assertRaises(vault.VaultIntegrityError):
            vault.read_bytes(a)

    def test_it_refuses_a_wrapped_key_moved_to_another_row(self) -> None:
        a = vault.store(io.BytesIO(_payload(500, 1)))
        b = vault.store(io.BytesIO(_payload(500, 2)))
        StoredObject.objects.filter(pk=b.pk).update(wrapped_key=a.wrapped_key)
        b.refresh_from_db()
        with self.assertRaises(vault.VaultIntegrityError):
            vault.read_bytes(b)

    def test_it_needs_the_key(self) -> None:
        obj = vault.store(io.BytesIO(_payload(100)))
        other = {"other": secrets.token_bytes(32)}
        with override_settings(PORTAL_KEYS=other, PORTAL_CURRENT_KEY_ID="other"):
            with self.assertRaisesRegex(vault.VaultIntegrityError, "unknown key id"):
                vault.read_bytes(obj)
        wrong = {obj.key_id: secrets.token_bytes(32)}
        with override_settings(PORTAL_KEYS=wrong, PORTAL_CURRENT_KEY_ID=obj.key_id):
            with self.assertRaises(vault.VaultIntegrityError):
                vault.read_bytes(obj)

    def test_rotate_keys_lets_the_old_key_go(self) -> None:
        data = [_payload(n, n) for n in (0, 10, SEG + 1)]
        objs = [vault.store(io.BytesIO(d)) for d in data]
        old_id = settings.PORTAL_CURRENT_KEY_ID
        new_keys = {"rotated": secrets.token_bytes(32), **settings.PORTAL_KEYS}
        with override_settings(PORTAL_KEYS=new_keys, PORTAL_CURRENT_KEY_ID="rotated"):
            out = io.StringIO()
            call_command("rotate_keys", stdout=out)
            self.assertIn("re-wrapped 3 data keys under rotated", out.getvalue())
        only_new = {"rotated": new_keys["rotated"]}
        with override_settings(PORTAL_KEYS=only_new, PORTAL_CURRENT_KEY_ID="rotated"):
            for obj, d in zip(objs, data, strict=True):
                obj.refresh_from_db()
                self.assertEqual(obj.key_id, "rotated")
                self.assertEqual(vault.read_bytes(obj), d)
        self.assertNotEqual(old_id, "rotated")

    def test_verify_storage_passes_on_intact_objects(self) -> None:
        for n in (0, 1, SEG + 1):
            vault.store(io.BytesIO(_payload(n, n)))
        out = io.StringIO()
        call_command("verify_storage", stdout=out)
        self.assertIn("3 ok, 0 failed", out.getvalue())

    def test_shred_makes_an_object_unreadable(self) -> None:
        obj = vault.store(io.BytesIO(_payload(100)))
        vault.shred(obj)
        obj.refresh_from_db()
        self.assertIsNone(obj.wrapped_key)
        self.assertNotIn(obj.storage_name, self.raw())
        with self.assertRaisesRegex(vault.VaultIntegrityError, "shredded"):
            vault.read_bytes(obj)

    def test_blob_file_seeks_like_a_file(self) -> None:
        data = _payload(SEG + 300, 9)
        f = vault.open_blob(vault.store(io.BytesIO(data)))
        f.seek(SEG - 10)
        self.assertEqual(f.read(20), data[SEG - 10 : SEG + 10])
        f.seek(-5, 2)
        self.assertEqual(f.read(), data[-5:])


def _mapped(inode: int) -> bool:
    """Whether this process has a file with that inode memory-mapped."""
    folder = f"/proc/{os.getpid()}/map_files"
    for entry in os.listdir(folder):
        with contextlib.suppress(OSError):
            if os.stat(f"{folder}/{entry}").st_ino == inode:
                return True
    return False


class LocalVaultTestCase(VaultContractMixin, TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.root = Path(settings.DATA_DIR) / f"vault-{uuid.uuid4().hex}"
        storage = {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(self.root)},
        }
        patcher = override_settings(STORAGES={**settings.STORAGES, "vault": storage})
        patcher.enable()
        self.addCleanup(patcher.disable)

    def raw(self) -> dict[str, bytes]:
        out = {}
        for path in self.root.rglob("*"):
            if path.is_file():
                out[str(path.relative_to(self.root))] = path.read_bytes()
        return out

    def overwrite(self, name: str, data: bytes) -> None:
        (self.root / name).write_bytes(data)

    def test_a_read_stopped_early_releases_the_file(self) -> None:
        obj = vault.store(io.BytesIO(_payload(3 * SEG)))
        inode = os.stat(self.root / obj.storage_name).st_ino
        chunks = vault.iter_range(obj)
        self.assertEqual(next(chunks), _payload(3 * SEG)[:SEG])
        self.assertTrue(_mapped(inode))
        chunks.close()
        self.assertFalse(_mapped(inode))

    def test_an_appended_byte_is_refused(self) -> None:
        obj = vault.store(io.BytesIO(_payload(SEG + 5)))
        self.overwrite(obj.storage_name, self.raw()[obj.storage_name] + b"\x00")
        with self.assertRaisesRegex(vault.VaultIntegrityError, "after its final segment"):
            vault.read_bytes(obj)

    def test_a_file_and_its_name_are_on_disk_before_its_row(self) -> None:
        synced: list[tuple[str, int]] = []
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            kind = "folder" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"
            inserts = sum("INSERT" in q["sql"] for q in queries.captured_queries)
            synced.append((kind, inserts))
            real_fsync(fd)

        with CaptureQueriesContext(connection) as queries, mock.patch("os.fsync", fsync):
            obj = vault.store(io.BytesIO(b"durable"))
        self.assertIn(("file", 0), synced)
        self.assertIn(("folder", 0), synced)
        self.assertTrue(StoredObject.objects.filter(pk=obj.pk).exists())

    def test_it_creates_files_only_the_portal_can_read(self) -> None:
        obj = vault.store(io.BytesIO(b"x"))
        mode = os.stat(self.root / obj.storage_name).st_mode & 0o777
        self.assertEqual(mode, 0o600)


class S3VaultTestCase(VaultContractMixin, TestCase):
    """The same contract through django-storages against a real S3-speaking server."""

    def setUp(self) -> None:
        super().setUp()
        self.bucket = f"vault-{uuid.uuid4().hex[:12]}"
        storage = s3_storage_settings(self.bucket)
        patcher = override_settings(STORAGES={**settings.STORAGES, "vault": storage})
        patcher.enable()
        self.addCleanup(patcher.disable)

    def raw(self) -> dict[str, bytes]:
        return raw_objects(self.bucket)

    def overwrite(self, name: str, data: bytes) -> None:
        put_raw(self.bucket, name, data)


def test_generated_keys_are_base64_of_32_bytes() -> None:
    spec = (Path(settings.DATA_DIR) / "keys").read_text()
    key_id, _, encoded = spec.partition(":")
    assert key_id and len(base64.b64decode(encoded)) == 32
