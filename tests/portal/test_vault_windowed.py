"""A stored object read through windows: the same bytes as the plaintext, wherever one reads."""

from __future__ import annotations

import io
import os
import random

import pytest
from django.core.files.storage import storages

from portal.vault.blobs import discard_unsaved, seal
from portal.vault.crypto import SEGMENT_SIZE, VaultIntegrityError
from portal.vault.windowed import WINDOW_SEGMENTS, WindowedBlob


@pytest.mark.parametrize(
    "size",
    [0, 1, SEGMENT_SIZE, WINDOW_SEGMENTS * SEGMENT_SIZE, WINDOW_SEGMENTS * SEGMENT_SIZE + 7,
     2 * WINDOW_SEGMENTS * SEGMENT_SIZE + SEGMENT_SIZE // 3],
)  # fmt: skip
def test_reads_anywhere_match_the_plaintext(size: int) -> None:
    plain = os.urandom(size)
    stored = seal(io.BytesIO(plain))
    try:
        rng = random.Random(size)
        with WindowedBlob(stored) as blob:
            assert blob.read() == plain
            for _ in range(200):
                start = rng.randrange(0, size + 2)
                length = rng.choice([0, 1, 30, 4096, SEGMENT_SIZE + 5, -1])
                blob.seek(start)
                want = plain[start:] if length < 0 else plain[start : start + length]
                assert blob.read(length) == want
                assert blob.tell() == (start if start >= size else start + len(want))
            blob.seek(-5, 2)
            assert blob.read() == plain[max(0, size - 5) :]
    finally:
        discard_unsaved(stored)


def test_a_changed_byte_is_refused() -> None:
    plain = os.urandom(3 * SEGMENT_SIZE)
    stored = seal(io.BytesIO(plain))
    try:
        path = storages["vault"].path(stored.storage_name)
        with open(path, "r+b") as f:
            f.seek(2 * SEGMENT_SIZE + 100)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 1]))
        with WindowedBlob(stored) as blob, pytest.raises(VaultIntegrityError):
            blob.read()
    finally:
        discard_unsaved(stored)
