"""Encryption at rest: every stored object goes in and out through here.

Each object has its own data key (DEK), wrapped by the current key-encryption key (KEK) under
associated data naming the key id and the object. The bytes are sealed by portal.crypto in
1 MiB AES-256-GCM segments, so any byte range is read by decrypting only the segments it needs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages
from django.utils import timezone

from portal.models import StoredObject
from portal.vault import crypto, filewrite
from portal.vault.crypto import VaultIntegrityError

__all__ = [  # the public names, re-exported by portal.vault
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


def _storage():
    return storages["vault"]


def _kek(key_id: str) -> bytes:
    try:
        return settings.PORTAL_KEYS[key_id]
    except KeyError:
        raise VaultIntegrityError(f"unknown key id {key_id}") from None


def _data_key(obj: StoredObject) -> bytes:
    if obj.wrapped_key is None:
        raise VaultIntegrityError(f"object {obj.code} was shredded")
    return crypto.unwrap_key(_kek(obj.key_id), obj.key_id, str(obj.code), bytes(obj.wrapped_key))


def _fsync_folder(path: str) -> None:
    """Make a folder's entries (a new file's name) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _libc_call(name: str) -> Callable[..., int] | None:
    """Return a Linux libc call by name, or None elsewhere."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return getattr(libc, name)
    except (OSError, AttributeError):
        return None


_syncfs = _libc_call("syncfs")
_sync_file_range = _libc_call("sync_file_range")
if _sync_file_range is not None:
    _sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
SYNC_FILE_RANGE_WRITE = 2


def make_durable(objs: Iterable[StoredObject], each: bool = False) -> None:
    """Put on disk the files of objects sealed with durable=False, names included.

    Call before saving their rows: a row must never outlive its file after a power cut.
    One syncfs for the whole batch where Linux offers it (one journal commit instead of two
    per file); otherwise, or with each=True (a few files: the whole file system's other
    writes need not wait), each file and each folder.
    """
    storage = _storage()
    names = [o.storage_name for o in objs if o is not None]
    if not names or not isinstance(storage, FileSystemStorage):
        return  # object stores have the object once save() returned
    if _syncfs is not None and not each:
        fd = os.open(storage.location, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    for name in names:
        fd = os.open(storage.path(name), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for folder in {os.path.dirname(storage.path(name)) for name in names}:
        _fsync_folder(folder)


def store(src: BinaryIO) -> StoredObject:
    """Encrypt a stream into storage and return its saved row (sizes, SHA-256, CRC-32)."""
    obj = seal(src)
    obj.save(force_insert=True)
    return obj


def seal(src: BinaryIO, durable: bool = True) -> StoredObject:
    """Encrypt a stream into storage and return its row unsaved, for saving in bulk.

    Until the row is saved the ciphertext is unreadable (its wrapped key lives only in the
    row), so a caller that gives up needs only delete the file: see `discard_unsaved`.
    With durable=False the file is not yet synced (its writing to disk is started): the
    caller must call make_durable() on the batch before its rows are saved.
    """
    code = uuid.uuid4()
    name = f"{code.hex[:2]}/{code.hex}"
    key_id = settings.PORTAL_CURRENT_KEY_ID
    dek = crypto.new_data_key()
    storage = _storage()
    if isinstance(storage, FileSystemStorage):
        path = storage.path(name)
        try:
            fd = filewrite.open_new(path)
        except FileNotFoundError:
            # Only the first object of each of the 256 folders creates it.
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            _fsync_folder(storage.location)
            fd = filewrite.open_new(path)
        try:
            try:
                writer = filewrite.NewFileWriter(fd)
            except BaseException:
                os.close(fd)
                raise
            try:
                result = crypto.encrypt_stream(dek, src, writer.write)
                writer.finish()
                # On disk, name included, before any row can point at it: after a power cut
                # a row never outlives its file.
                if durable:
                    os.fsync(fd)
                elif _sync_file_range is not None:
                    _sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)
            finally:
                writer.release()
                os.close(fd)
            if durable:
                _fsync_folder(os.path.dirname(path))
        except BaseException:
            os.unlink(path)
            raise
    else:
        # Object stores need a file to upload; it holds ciphertext only, past 16 MiB in
        # PORTAL_VAULT_SPOOL_DIR (a disk: the containers' /tmp is a small tmpfs).
        spool_dir = settings.PORTAL_VAULT_SPOOL_DIR or None
        with tempfile.SpooledTemporaryFile(max_size=16 * 2**20, dir=spool_dir) as spool:
            result = crypto.encrypt_stream(dek, src, spool.write)
            spool.seek(0)
            saved = storage.save(name, File(spool))
            if saved != name:
                raise VaultIntegrityError("storage renamed an object")
    return StoredObject(
        code=code,
        storage_name=name,
        key_id=key_id,
        wrapped_key=crypto.wrap_key(_kek(key_id), key_id, str(code), dek),
        plain_size=result.plain_size,
        segment_size=crypto.SEGMENT_SIZE,
        sha256=result.sha256,
        crc32=result.crc32,
    )


def discard_unsaved(obj: StoredObject) -> None:
    """Delete the ciphertext of a sealed object whose row was never saved."""
    _storage().delete(obj.storage_name)


def store_bytes(data: bytes) -> StoredObject:
    """Encrypt small in-memory content, such as a thumbnail."""
    import io

    return store(io.BytesIO(data))


class _RangeReader:
    """Random access to an object's ciphertext on any storage backend.

    A local file is memory-mapped, so AES-GCM reads the page cache directly instead of a
    copy made by pread (a third of the decryption time). Stored objects are never
    rewritten in place; a truncated file is caught by the segment checks.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        storage = _storage()
        self._bucket = (
            getattr(storage, "bucket", None) if not isinstance(storage, FileSystemStorage) else None
        )
        self._map: mmap.mmap | None = None
        self._view: memoryview | None = None
        if self._bucket is None:
            fd = os.open(storage.path(name), os.O_RDONLY)
            try:
                size = os.fstat(fd).st_size
                if size:
                    self._map = mmap.mmap(fd, size, prot=mmap.PROT_READ)
            finally:
                os.close(fd)
            self._view = memoryview(self._map) if self._map is not None else memoryview(b"")

    def read_at(self, offset: int, length: int) -> bytes | memoryview:
        if length <= 0:
            return b""
        if self._view is not None:
            return self._view[offset : offset + length]
        obj = self._bucket.Object(self.name)
        try:
            body = obj.get(Range=f"bytes={offset}-{offset + length - 1}")["Body"]
        except Exception as exc:  # botocore raises ClientError for a range past the end
            if "InvalidRange" in str(exc):
                return b""
            raise
        return body.read()

    def close(self) -> None:
        if self._view is not None:
            self._view.release()
            self._view = None
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                pass  # a slice is still referenced (an error's traceback); freed with it
            self._map = None


def iter_range(obj: StoredObject, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
    """Yield the plaintext of [start, stop), decrypting only the segments needed."""
    dek, reader = open_ciphertext(obj)
    try:
        yield from crypto.decrypt_range(
            dek,
            reader.read_at,
            obj.plain_size,
            start,
            obj.plain_size if stop is None else stop,
            segment_size=obj.segment_size,
        )
    finally:
        reader.close()


def open_ciphertext(obj: StoredObject) -> tuple[bytes, _RangeReader]:
    """Return an object's data key and a reader of its ciphertext; close the reader after."""
    dek = _data_key(obj)
    try:
        return dek, _RangeReader(obj.storage_name)
    except FileNotFoundError:
        raise VaultIntegrityError(f"object {obj.code} is missing from storage") from None


def read_bytes(obj: StoredObject, start: int = 0, stop: int | None = None) -> bytes:
    """Return plaintext as bytes; for headers and small objects, never a whole study."""
    return b"".join(iter_range(obj, start, stop))


class BlobFile:
    """A read-only, seekable file over a stored object, for libraries that want a file."""

    def __init__(self, obj: StoredObject) -> None:
        self.obj = obj
        self.pos = 0

    def read(self, n: int = -1) -> bytes:
        stop = self.obj.plain_size if n is None or n < 0 else min(self.pos + n, self.obj.plain_size)
        if stop <= self.pos:
            return b""
        data = read_bytes(self.obj, self.pos, stop)
        self.pos = stop
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.obj.plain_size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def __enter__(self) -> BlobFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_blob(obj: StoredObject) -> BlobFile:
    """Return a seekable read-only file over the plaintext of a stored object."""
    return BlobFile(obj)


def rewrap(obj: StoredObject) -> bool:
    """Re-wrap one data key under the current KEK; return True if it changed."""
    current = settings.PORTAL_CURRENT_KEY_ID
    if obj.wrapped_key is None or obj.key_id == current:
        return False
    dek = _data_key(obj)
    obj.wrapped_key = crypto.wrap_key(_kek(current), current, str(obj.code), dek)
    obj.key_id = current
    obj.save(update_fields=["wrapped_key", "key_id"])
    return True


def verify(obj: StoredObject) -> None:
    """Decrypt a whole object and check its SHA-256; raise VaultIntegrityError if it differs."""
    import hashlib

    digest = hashlib.sha256()
    for chunk in iter_range(obj):
        digest.update(chunk)
    if digest.hexdigest() != obj.sha256:
        raise VaultIntegrityError(f"object {obj.code} does not match its recorded SHA-256")


def shred(obj: StoredObject) -> None:
    """Destroy the wrapped key (the plaintext is then unrecoverable) and delete the bytes."""
    obj.wrapped_key = None
    obj.shredded_at = timezone.now()
    obj.save(update_fields=["wrapped_key", "shredded_at"])
    _storage().delete(obj.storage_name)
