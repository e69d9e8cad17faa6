"""Ciphertext files are written past the page cache where the file system allows, unchanged."""

from __future__ import annotations

import ctypes
import errno
import io
import mmap
import os
import random
from unittest import mock

from django.core.files.storage import storages
from django.test import TestCase

from portal import vault
from portal.vault import crypto, filewrite

# Sizes whose ciphertext (header + data + tag) ends just short of, on and just past a block
# and the writer's buffer, and one that fills the buffer more than once.
OVERHEAD = crypto.HEADER_SIZE + crypto.TAG_SIZE
SIZES = [
    0,
    1,
    filewrite.BLOCK - OVERHEAD - 1,
    filewrite.BLOCK - OVERHEAD,
    filewrite.BLOCK - OVERHEAD + 1,
    527_000,
    crypto.SEGMENT_SIZE - 1,
    crypto.SEGMENT_SIZE,
    2 * crypto.SEGMENT_SIZE + 5,
]


def _resident_pages(path: str) -> int:
    """How many of a file's pages sit in the page cache (mincore on a mapping never read)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long
    ]  # fmt: skip
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = os.path.getsize(path)
    pages = -(-size // mmap.PAGESIZE)
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed")
        try:
            vector = (ctypes.c_ubyte * pages)()
            if libc.mincore(address, size, vector):
                raise OSError(ctypes.get_errno(), "mincore failed")
            return sum(v & 1 for v in vector)
        finally:
            libc.munmap(address, size)
    finally:
        os.close(fd)


# Runs wherever the data folder takes O_DIRECT: ext4 and xfs disks, CI's included; skipped on
# tmpfs before Linux 6.6 and some network mounts, where the vault writes through the cache.
NO_DIRECT_IO = "the data folder's file system does not take O_DIRECT (runs on ext4/xfs, as in CI)"


def _direct_io_here() -> bool:
    """Whether the vault's folder takes O_DIRECT (most disks do; some file systems refuse)."""
    if not filewrite.O_DIRECT:
        return False
    probe = os.path.join(storages["vault"].location, ".direct-probe")
    os.makedirs(os.path.dirname(probe), exist_ok=True)
    try:
        fd = filewrite.open_new(probe)
    except FileExistsError:
        os.unlink(probe)
        fd = filewrite.open_new(probe)
    try:
        return bool(filewrite.NewFileWriter(fd).direct)
    finally:
        os.close(fd)
        os.unlink(probe)


class DirectWriteTests(TestCase):
    def test_objects_of_every_awkward_size_read_back_byte_identical(self) -> None:
        rng = random.Random(7)
        for size in SIZES:
            with self.subTest(size=size):
                data = rng.randbytes(size)
                obj = vault.store(io.BytesIO(data))
                self.assertEqual(vault.read_bytes(obj), data)
                path = storages["vault"].path(obj.storage_name)
                segments = max(1, -(-size // crypto.SEGMENT_SIZE))
                expected = crypto.HEADER_SIZE + size + segments * crypto.TAG_SIZE
                self.assertEqual(os.path.getsize(path), expected)

    def test_a_stored_object_leaves_at_most_its_last_page_in_the_page_cache(self) -> None:
        if not _direct_io_here():
            self.skipTest(NO_DIRECT_IO)
        obj = vault.store(io.BytesIO(random.Random(3).randbytes(2 * crypto.SEGMENT_SIZE + 5)))
        path = storages["vault"].path(obj.storage_name)
        self.assertLessEqual(_resident_pages(path), 1)

    def test_a_file_system_that_refuses_direct_writes_gets_plain_ones(self) -> None:
        real_write = os.write

        def refuse_direct(fd: int, data) -> int:  # noqa: ANN001
            import fcntl

            if filewrite.O_DIRECT and fcntl.fcntl(fd, fcntl.F_GETFL) & filewrite.O_DIRECT:
                raise OSError(errno.EINVAL, "Invalid argument")
            return real_write(fd, data)

        data = random.Random(5).randbytes(crypto.SEGMENT_SIZE + 100)
        with mock.patch.object(filewrite.os, "write", refuse_direct):
            obj = vault.store(io.BytesIO(data))
        self.assertEqual(vault.read_bytes(obj), data)

    def test_a_short_direct_write_then_a_refusal_loses_no_byte(self) -> None:
        # The plain retry wrote the whole chunk again from its start, after the short write
        # had moved the file on: the object was sealed, then failed authentication.
        real_write = os.write
        calls = {"n": 0}

        def short_then_refuse(fd: int, data) -> int:  # noqa: ANN001
            import fcntl

            if filewrite.O_DIRECT and fcntl.fcntl(fd, fcntl.F_GETFL) & filewrite.O_DIRECT:
                calls["n"] += 1
                if calls["n"] == 1 and len(data) > filewrite.BLOCK:
                    return real_write(fd, memoryview(data)[: filewrite.BLOCK])
                raise OSError(errno.EINVAL, "Invalid argument")
            return real_write(fd, data)

        data = random.Random(9).randbytes(600_000)
        with mock.patch.object(filewrite.os, "write", short_then_refuse):
            obj = vault.store(io.BytesIO(data))
        self.assertEqual(vault.read_bytes(obj), data)

    def test_a_failed_write_removes_the_file_and_keeps_the_buffer_reusable(self) -> None:
        if not _direct_io_here():
            self.skipTest(NO_DIRECT_IO)
        vault.store(io.BytesIO(b"x" * 600_000))  # a buffer in the pool
        pooled = list(filewrite._pool)
        before = set(_all_files())

        def no_space(fd: int, data) -> int:  # noqa: ANN001
            raise OSError(errno.ENOSPC, "No space left on device")

        with mock.patch.object(filewrite.os, "write", no_space), self.assertRaises(OSError):
            vault.seal(io.BytesIO(b"x" * 600_000))
        self.assertEqual(set(_all_files()), before)
        self.assertEqual(filewrite._pool, pooled)  # given back, not dropped
        data = b"after the failure" * 1000
        self.assertEqual(vault.read_bytes(vault.store(io.BytesIO(data))), data)


def _all_files() -> list[str]:
    root = storages["vault"].location
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]
