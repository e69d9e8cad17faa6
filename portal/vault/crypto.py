"""Streaming envelope encryption for stored objects (no Django).

Object layout: a 16-byte header (magic, version, segment size, nonce prefix), then
segments of ``segment_size`` plaintext bytes, each sealed with AES-256-GCM under the
nonce prefix || segment counter || last-segment flag, with the header as associated
data (the STREAM construction of Tink's streaming AEAD and age).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

try:  # zlib-ng's CRC-32 uses carry-less multiplication: ~20x the speed of zlib's.
    from zlib_ng.zlib_ng import crc32 as _crc32
except ImportError:  # pragma: no cover - the plain zlib gives the same values
    _crc32 = zlib.crc32

MAGIC = b"PVLT"
VERSION = 1
SEGMENT_SIZE = 1 << 20
NONCE_PREFIX_SIZE = 7
HEADER_SIZE = len(MAGIC) + 1 + 4 + NONCE_PREFIX_SIZE
TAG_SIZE = 16
KEY_SIZE = 32
WRAP_NONCE_SIZE = 12
WRAPPED_KEY_SIZE = WRAP_NONCE_SIZE + KEY_SIZE + TAG_SIZE
MAX_SEGMENTS = 1 << 32

# Plaintext buffers in flight (hashing, encrypting, reading ahead); bounds memory.
_RING_SLOTS = 4


class VaultIntegrityError(Exception):
    """Raised when stored ciphertext or a wrapped key fails verification."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class EncryptResult:
    plain_size: int
    sha256: str
    crc32: int


def new_data_key() -> bytes:
    """Return a fresh random 256-bit data key."""
    return secrets.token_bytes(KEY_SIZE)


def _wrap_ad(key_id: str, object_id: str) -> bytes:
    # A "|" in the key id would make two (key id, object id) pairs share one AD.
    if "|" in key_id:
        raise ValueError("key id must not contain '|'")
    return b"portal-dek|" + key_id.encode() + b"|" + object_id.encode()


def wrap_key(kek: bytes, key_id: str, object_id: str, dek: bytes) -> bytes:
    """Seal a data key under the KEK, bound to its key id and object id."""
    if len(dek) != KEY_SIZE:
        raise ValueError("data key must be 32 bytes")
    nonce = secrets.token_bytes(WRAP_NONCE_SIZE)
    return nonce + AESGCM(kek).encrypt(nonce, dek, _wrap_ad(key_id, object_id))


def unwrap_key(kek: bytes, key_id: str, object_id: str, wrapped: bytes) -> bytes:
    """Return the data key sealed by wrap_key, or raise VaultIntegrityError."""
    if len(wrapped) != WRAPPED_KEY_SIZE:
        raise VaultIntegrityError(f"wrapped key has wrong length {len(wrapped)}")
    nonce, sealed = wrapped[:WRAP_NONCE_SIZE], wrapped[WRAP_NONCE_SIZE:]
    try:
        return AESGCM(kek).decrypt(nonce, sealed, _wrap_ad(key_id, object_id))
    except InvalidTag:
        raise VaultIntegrityError(
            f"wrapped key failed authentication under key id {key_id}"
        ) from None


def _check_segment_size(segment_size: int) -> None:
    if not 0 < segment_size < 1 << 31:
        raise ValueError(f"invalid segment size {segment_size}")


def segment_count(plain_size: int, segment_size: int = SEGMENT_SIZE) -> int:
    """Return how many segments hold plain_size bytes (an empty object has one)."""
    return max(1, -(-plain_size // segment_size))


def ciphertext_size(plain_size: int, segment_size: int = SEGMENT_SIZE) -> int:
    """Return the stored size of an object holding plain_size bytes."""
    if plain_size < 0:
        raise ValueError("plain size must not be negative")
    _check_segment_size(segment_size)
    return HEADER_SIZE + plain_size + segment_count(plain_size, segment_size) * TAG_SIZE


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", index, last)


def _read_full(src: Readable, size: int) -> bytes:
    """Read size bytes, or fewer only at EOF, from a source that may read short."""
    chunk = src.read(size)
    if not chunk:
        return b""
    if len(chunk) == size and type(chunk) is bytes:
        return chunk
    parts = [bytes(chunk)]
    got = len(chunk)
    while got < size:
        more = src.read(size - got)
        if not more:
            break
        parts.append(bytes(more))
        got += len(more)
    return b"".join(parts)


def _fill(src: Readable, view: memoryview) -> int:
    """Fill view from src, retrying short reads; return the byte count (short only at EOF)."""
    readinto = getattr(src, "readinto", None)
    size = len(view)
    got = 0
    while got < size:
        if readinto is not None:
            n = readinto(view[got:]) or 0
        else:
            chunk = src.read(size - got) or b""
            n = len(chunk)
            view[got : got + n] = chunk
        if not n:
            break
        got += n
    return got


class _Crc32:
    """Hold a running CRC-32."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: memoryview) -> None:
        self.value = _crc32(data, self.value)


class _SegmentRing:
    """Reusable plaintext buffers; a buffer is reused only after its hash job finished.

    Fresh 1 MiB allocations cost page faults that dominate the encryption time.
    """

    def __init__(self, segment_size: int) -> None:
        self.segment_size = segment_size
        self.views: list[memoryview] = []
        self.jobs: list[Future[None] | None] = []
        self.out = memoryview(bytearray(segment_size + TAG_SIZE))

    def acquire(self, slot: int) -> memoryview:
        if slot == len(self.views):
            self.views.append(memoryview(bytearray(self.segment_size)))
            self.jobs.append(None)
        self._wait(slot)
        return self.views[slot]

    def _wait(self, slot: int) -> None:
        job, self.jobs[slot] = self.jobs[slot], None
        if job is not None:
            job.result()

    def drain(self) -> None:
        for slot in range(len(self.jobs)):
            self._wait(slot)


class _ThreadState(threading.local):
    """Per calling thread: a SHA-256 helper thread and a buffer ring, kept across objects.

    Starting a thread and faulting in fresh buffers for every object costs more than
    encrypting a 500 KB object. The pid check drops a helper inherited across fork(),
    whose thread does not exist in the child.
    """

    pid = 0
    worker: ThreadPoolExecutor | None = None
    rings: dict[int, _SegmentRing]

    def __init__(self) -> None:
        self.rings = {}

    def digest_worker(self) -> ThreadPoolExecutor:
        if self.worker is None or self.pid != os.getpid():
            self.worker = ThreadPoolExecutor(1, thread_name_prefix="vault-digest")
            self.pid = os.getpid()
            self.rings = {}
        return self.worker

    def take_ring(self, segment_size: int) -> _SegmentRing:
        # Taken out while in use, so a nested call never shares the buffers.
        ring = self.rings.pop(segment_size, None)
        return ring if ring is not None else _SegmentRing(segment_size)

    def give_back(self, ring: _SegmentRing) -> None:
        if len(self.rings) < 2:
            self.rings[ring.segment_size] = ring


_state = _ThreadState()


def encrypt_stream(
    dek: bytes,
    src: Readable,
    write: Callable[[memoryview], object],
    segment_size: int = SEGMENT_SIZE,
) -> EncryptResult:
    """Encrypt src into write() segment by segment, hashing the plaintext in the same pass.

    write receives a memoryview of a buffer that is reused afterwards, so it must copy
    or consume the bytes before returning, as file.write and BytesIO.write do.
    """
    _check_segment_size(segment_size)
    header = MAGIC + bytes([VERSION]) + segment_size.to_bytes(4, "big")
    header += secrets.token_bytes(NONCE_PREFIX_SIZE)
    prefix = header[-NONCE_PREFIX_SIZE:]
    aead = AESGCM(dek)
    sha = hashlib.sha256()
    crc = _Crc32()
    size = 0
    index = 0
    # SHA-256 costs several times AES-GCM; a helper thread runs it (hashlib releases the
    # GIL) while this thread encrypts and writes, so one object uses both cores. A single
    # helper keeps the updates in order.
    worker = _state.digest_worker()
    ring = _state.take_ring(segment_size)
    out = ring.out
    write(header)
    try:
        slot = 0
        length = _fill(src, ring.acquire(slot))
        # Decided once per object: every update must go through the same queue, in order.
        # A one-segment object hashes here: handing one buffer to the helper and waiting
        # for it costs more in wake-ups than the overlap with AES-GCM saves.
        threaded = length == segment_size
        while True:
            following = (slot + 1) % _RING_SLOTS
            if length == segment_size:
                following_length = _fill(src, ring.acquire(following))
            else:
                following_length = 0
            last = following_length == 0
            if index >= MAX_SEGMENTS:
                raise ValueError("object has too many segments")
            data = ring.views[slot][:length]
            if threaded:
                ring.jobs[slot] = worker.submit(sha.update, data)
            else:
                sha.update(data)
            crc.update(data)
            sealed = out[: length + TAG_SIZE]
            aead.encrypt_into(_nonce(prefix, index, last), data, header, sealed)
            write(sealed)
            size += length
            if last:
                break
            slot, length = following, following_length
            index += 1
        ring.drain()
    except BaseException:
        # The helper may still be reading a buffer; it must finish before the ring is reused.
        try:
            ring.drain()
        except Exception:  # noqa: S110 - the original error is the one to report
            pass
        raise
    _state.give_back(ring)
    return EncryptResult(plain_size=size, sha256=sha.hexdigest(), crc32=crc.value)


def _check_header(header: bytes, segment_size: int) -> bytes:
    """Validate an object header and return its nonce prefix."""
    if len(header) < HEADER_SIZE:
        raise VaultIntegrityError("object truncated in header")
    if header[:4] != MAGIC:
        raise VaultIntegrityError("object header has wrong magic")
    if header[4] != VERSION:
        raise VaultIntegrityError(f"object version {header[4]} is not supported")
    stored_size = int.from_bytes(header[5:9], "big")
    if stored_size != segment_size:
        raise VaultIntegrityError(
            f"object segment size {stored_size} does not match expected {segment_size}"
        )
    return bytes(header[9:HEADER_SIZE])


def decrypt_range(
    dek: bytes,
    read_at: Callable[[int, int], bytes | memoryview],
    plain_size: int,
    start: int = 0,
    stop: int | None = None,
    segment_size: int = SEGMENT_SIZE,
) -> Iterator[bytes]:
    """Return an iterator of the plaintext in [start, stop), decrypting only the segments needed.

    The header is checked before this returns; segments are checked as they are read.
    """
    _check_segment_size(segment_size)
    if stop is None:
        stop = plain_size
    if not 0 <= start <= stop <= plain_size:
        raise ValueError(f"range [{start}, {stop}) is outside 0..{plain_size}")
    header = bytes(read_at(0, HEADER_SIZE))
    prefix = _check_header(header, segment_size)
    count = segment_count(plain_size, segment_size)
    # An empty object still has its one empty segment to authenticate.
    end = count if plain_size == 0 else -(-stop // segment_size)
    wanted = range(start // segment_size, end if start < stop or plain_size == 0 else 0)
    aead = AESGCM(dek)

    def segments() -> Iterator[bytes]:
        for index in wanted:
            last = index == count - 1
            offset = HEADER_SIZE + index * (segment_size + TAG_SIZE)
            length = (plain_size - index * segment_size if last else segment_size) + TAG_SIZE
            # Ask one byte past the final segment so appended data is noticed.
            sealed = read_at(offset, length + 1 if last else length)
            if len(sealed) < length:
                raise VaultIntegrityError("object truncated")
            if len(sealed) > length:
                raise VaultIntegrityError(
                    "object has data after its final segment"
                    if last
                    else "storage returned more bytes than requested"
                )
            try:
                plain = aead.decrypt(_nonce(prefix, index, last), sealed, header)
            except InvalidTag:
                raise VaultIntegrityError(f"segment {index} failed authentication") from None
            # read_at may hand out a view of a mapping; hold none while suspended.
            del sealed
            lo = max(start - index * segment_size, 0)
            hi = min(stop - index * segment_size, len(plain))
            yield plain if lo == 0 and hi == len(plain) else plain[lo:hi]

    return segments()


def file_read_at(f: BinaryIO) -> Callable[[int, int], bytes]:
    """Return a read_at over a seekable binary file that retries short reads."""

    def read_at(offset: int, length: int) -> bytes:
        f.seek(offset)
        return _read_full(f, length)

    return read_at


def decrypt_stream(
    dek: bytes,
    src_file: BinaryIO,
    plain_size: int,
    start: int = 0,
    stop: int | None = None,
    segment_size: int = SEGMENT_SIZE,
) -> Iterator[bytes]:
    """Return an iterator of the plaintext of a seekable stored object file."""
    return decrypt_range(dek, file_read_at(src_file), plain_size, start, stop, segment_size)
