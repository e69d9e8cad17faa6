from __future__ import annotations

import hashlib
import io
import random
import zlib

import pytest

from portal.vault import bench as vault_bench
from portal.vault import crypto
from portal.vault.crypto import (
    HEADER_SIZE,
    SEGMENT_SIZE,
    TAG_SIZE,
    VaultIntegrityError,
    ciphertext_size,
    decrypt_range,
    decrypt_stream,
    encrypt_stream,
    new_data_key,
)

SEG = 64
STRIDE = SEG + TAG_SIZE


def encrypt(
    dek: bytes, plain: bytes, segment_size: int = SEG
) -> tuple[bytes, crypto.EncryptResult]:
    sink = io.BytesIO()
    result = encrypt_stream(dek, io.BytesIO(plain), sink.write, segment_size=segment_size)
    return sink.getvalue(), result


def decrypt(
    dek: bytes,
    stored: bytes,
    plain_size: int,
    start: int = 0,
    stop: int | None = None,
    segment_size: int = SEG,
) -> bytes:
    def read_at(offset: int, length: int) -> bytes:
        return stored[offset : offset + length]

    chunks = decrypt_range(dek, read_at, plain_size, start, stop, segment_size=segment_size)
    return b"".join(chunks)


def segments(stored: bytes) -> tuple[bytes, list[bytes]]:
    body = stored[HEADER_SIZE:]
    return stored[:HEADER_SIZE], [body[i : i + STRIDE] for i in range(0, len(body), STRIDE)]


def rand_bytes(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


class ShortReader(io.RawIOBase):
    """Return at most 7 bytes per read and offer no readinto, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self.src = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self.src.read(min(size, 7) if size >= 0 else 7)

    readinto = None  # type: ignore[assignment]


class ShortReadinto(io.RawIOBase):
    """Fill at most 5 bytes per readinto call."""

    def __init__(self, data: bytes) -> None:
        self.src = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer)[:5]
        return self.src.readinto(view)


SIZES = [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 10 * SEG + 13]


class TestRoundTrip:
    @pytest.mark.parametrize("size", SIZES)
    def test_it_round_trips(self, size: int) -> None:
        dek = new_data_key()
        plain = rand_bytes(size)
        stored, result = encrypt(dek, plain)
        assert len(stored) == ciphertext_size(size, SEG)
        assert result.plain_size == size
        assert decrypt(dek, stored, size) == plain

    @pytest.mark.parametrize("size", SIZES)
    def test_it_reports_sha256_and_crc32_of_plaintext(self, size: int) -> None:
        plain = rand_bytes(size, seed=2)
        _, result = encrypt(new_data_key(), plain)
        assert result.sha256 == hashlib.sha256(plain).hexdigest()
        assert result.crc32 == zlib.crc32(plain)

    def test_it_lays_out_segments_as_documented(self) -> None:
        stored, _ = encrypt(new_data_key(), rand_bytes(2 * SEG))
        header, segs = segments(stored)
        assert header[:4] == b"PVLT"
        assert header[4] == 1
        assert int.from_bytes(header[5:9], "big") == SEG
        assert [len(s) for s in segs] == [STRIDE, STRIDE]

    def test_it_stores_no_plaintext(self) -> None:
        plain = b"patient-name-" * 20
        stored, _ = encrypt(new_data_key(), plain)
        assert b"patient-name" not in stored

    def test_it_uses_a_fresh_nonce_prefix_per_object(self) -> None:
        dek = new_data_key()
        first, _ = encrypt(dek, b"x" * 10)
        second, _ = encrypt(dek, b"x" * 10)
        assert first[9:HEADER_SIZE] != second[9:HEADER_SIZE]
        assert first[HEADER_SIZE:] != second[HEADER_SIZE:]

    def test_it_accepts_short_reads(self) -> None:
        dek = new_data_key()
        plain = rand_bytes(5 * SEG + 3)
        sink = io.BytesIO()
        result = encrypt_stream(dek, ShortReader(plain), sink.write, segment_size=SEG)
        assert result.sha256 == hashlib.sha256(plain).hexdigest()
        assert decrypt(dek, sink.getvalue(), len(plain)) == plain

    def test_it_accepts_short_readinto(self) -> None:
        dek = new_data_key()
        plain = rand_bytes(3 * SEG + 1)
        sink = io.BytesIO()
        encrypt_stream(dek, ShortReadinto(plain), sink.write, segment_size=SEG)
        assert decrypt(dek, sink.getvalue(), len(plain)) == plain

    def test_it_decrypts_a_file(self, tmp_path) -> None:
        dek = new_data_key()
        plain = rand_bytes(7 * SEG + 5)
        stored, _ = encrypt(dek, plain)
        path = tmp_path / "obj"
        path.write_bytes(stored)
        with path.open("rb") as f:
            assert b"".join(decrypt_stream(dek, f, len(plain), 10, 300, SEG)) == plain[10:300]

    @pytest.mark.parametrize("size", [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, 3 * SEGMENT_SIZE + 5])
    def test_it_round_trips_real_segment_size(self, size: int) -> None:
        dek = new_data_key()
        plain = rand_bytes(size, seed=size)
        stored, result = encrypt(dek, plain, segment_size=SEGMENT_SIZE)
        assert len(stored) == ciphertext_size(size)
        assert result.sha256 == hashlib.sha256(plain).hexdigest()
        assert result.crc32 == zlib.crc32(plain)
        assert decrypt(dek, stored, size, segment_size=SEGMENT_SIZE) == plain


class TestRanges:
    def test_random_ranges_match_slices(self) -> None:
        dek = new_data_key()
        plain = rand_bytes(20 * SEG + 17)
        stored, _ = encrypt(dek, plain)
        rng = random.Random(1234)
        n = len(plain)
        boundaries = [k * SEG + d for k in range(21) for d in (-1, 0, 1) if 0 <= k * SEG + d <= n]
        for _ in range(200):
            pick = rng.random()
            if pick < 0.3:
                a, b = sorted(rng.choice(boundaries) for _ in range(2))
            elif pick < 0.4:
                a = b = rng.randint(0, n)
            else:
                a, b = sorted(rng.randint(0, n) for _ in range(2))
            assert decrypt(dek, stored, n, a, b) == plain[a:b], (a, b)

    def test_it_reads_only_the_segments_needed(self) -> None:
        dek = new_data_key()
        plain = rand_bytes(10 * SEG)
        stored, _ = encrypt(dek, plain)
        reads: list[tuple[int, int]] = []

        def read_at(offset: int, length: int) -> bytes:
            reads.append((offset, length))
            return stored[offset : offset + length]

        got = b"".join(decrypt_range(dek, read_at, len(plain), 3 * SEG + 5, 4 * SEG + 2, SEG))
        assert got == plain[3 * SEG + 5 : 4 * SEG + 2]
        assert reads == [
            (0, HEADER_SIZE),
            (HEADER_SIZE + 3 * STRIDE, STRIDE),
            (HEADER_SIZE + 4 * STRIDE, STRIDE),
        ]

    def test_random_ranges_with_real_segment_size(self) -> None:
        dek = new_data_key()
        plain = rand_bytes(3 * SEGMENT_SIZE + 100)
        stored, _ = encrypt(dek, plain, segment_size=SEGMENT_SIZE)
        rng = random.Random(99)
        for a, b in [(0, 1), (SEGMENT_SIZE - 1, SEGMENT_SIZE + 1), (len(plain) - 1, len(plain))] + [
            tuple(sorted(rng.randint(0, len(plain)) for _ in range(2))) for _ in range(5)
        ]:
            got = decrypt(dek, stored, len(plain), a, b, segment_size=SEGMENT_SIZE)
            assert got == plain[a:b]

    @pytest.mark.parametrize("bad", [(-1, 5), (5, 4), (0, 10 * SEG + 1)])
    def test_it_rejects_ranges_outside_the_object(self, bad: tuple[int, int]) -> None:
        dek = new_data_key()
        stored, _ = encrypt(dek, rand_bytes(10 * SEG))
        with pytest.raises(ValueError):
            decrypt(dek, stored, 10 * SEG, *bad)


def tampered_cases() -> dict[str, object]:
    """Map a name to a function from (stored, other_same_dek, other_dek_obj) to bad bytes."""

    def flip(pos: int):
        def f(s: bytes, *_: bytes) -> bytes:
            b = bytearray(s)
            b[pos if pos >= 0 else len(b) + pos] ^= 0x01
            return bytes(b)

        return f

    def regroup(fn):
        def f(s: bytes, *_: bytes) -> bytes:
            header, segs = segments(s)
            return header + b"".join(fn(segs))

        return f

    def swap_from(which: int):
        def f(s: bytes, same: bytes, other: bytes) -> bytes:
            header, segs = segments(s)
            donor = segments(same if which == 0 else other)[1]
            segs[1] = donor[1]
            return header + b"".join(segs)

        return f

    return {
        "flip magic": flip(0),
        "flip version": flip(4),
        "flip segment size": flip(8),
        "flip nonce prefix": flip(12),
        "flip segment body": flip(HEADER_SIZE + STRIDE + 5),
        "flip tag": flip(HEADER_SIZE + STRIDE - 1),
        "flip last tag": flip(-1),
        "drop last byte": lambda s, *_: s[:-1],
        "drop last 20 bytes": lambda s, *_: s[:-20],
        "drop header": lambda s, *_: s[: HEADER_SIZE - 1],
        "drop last segment": regroup(lambda g: g[:-1]),
        "drop middle segment": regroup(lambda g: g[:1] + g[2:]),
        "reorder segments": regroup(lambda g: [g[1], g[0], *g[2:]]),
        "duplicate segment": regroup(lambda g: [g[0], g[0], *g[2:]]),
        "append extra segment": regroup(lambda g: [*g, g[0]]),
        "append one byte": lambda s, *_: s + b"\x00",
        "segment from other object same dek": swap_from(0),
        "segment from other object other dek": swap_from(1),
        "header from other object": lambda s, same, _: same[:HEADER_SIZE] + s[HEADER_SIZE:],
    }


class TestTampering:
    SIZE = 4 * SEG + 10

    @pytest.mark.parametrize("name", list(tampered_cases()))
    def test_it_detects(self, name: str) -> None:
        dek = new_data_key()
        plain = rand_bytes(self.SIZE)
        stored, _ = encrypt(dek, plain)
        same, _ = encrypt(dek, rand_bytes(self.SIZE, seed=5))
        other, _ = encrypt(new_data_key(), rand_bytes(self.SIZE, seed=6))
        bad = tampered_cases()[name](stored, same, other)  # type: ignore[operator]
        assert bad != stored
        with pytest.raises(VaultIntegrityError) as err:
            decrypt(dek, bad, self.SIZE)
        assert plain[:8] not in str(err.value).encode()

    def test_it_checks_the_header_before_iterating(self) -> None:
        dek = new_data_key()
        stored, _ = encrypt(dek, rand_bytes(self.SIZE))
        bad = b"XXXX" + stored[4:]
        with pytest.raises(VaultIntegrityError, match="magic"):
            decrypt_range(dek, lambda o, n: bad[o : o + n], self.SIZE, segment_size=SEG)

    def test_it_names_the_failed_segment(self) -> None:
        dek = new_data_key()
        stored, _ = encrypt(dek, rand_bytes(self.SIZE))
        bad = bytearray(stored)
        bad[HEADER_SIZE + 3 * STRIDE + 1] ^= 0x80
        with pytest.raises(VaultIntegrityError, match="segment 3 failed authentication"):
            decrypt(dek, bytes(bad), self.SIZE)

    def test_it_reports_truncation(self) -> None:
        dek = new_data_key()
        stored, _ = encrypt(dek, rand_bytes(self.SIZE))
        with pytest.raises(VaultIntegrityError, match="object truncated"):
            decrypt(dek, stored[:-1], self.SIZE)

    def test_it_rejects_a_wrong_dek(self) -> None:
        stored, _ = encrypt(new_data_key(), rand_bytes(self.SIZE))
        with pytest.raises(VaultIntegrityError, match="segment 0"):
            decrypt(new_data_key(), stored, self.SIZE)

    @pytest.mark.parametrize("size", [0, SEG])
    def test_it_rejects_a_wrong_dek_for_tiny_objects(self, size: int) -> None:
        stored, _ = encrypt(new_data_key(), rand_bytes(size))
        with pytest.raises(VaultIntegrityError):
            decrypt(new_data_key(), stored, size)

    @pytest.mark.parametrize("claimed", [3 * SEG, 4 * SEG, 5 * SEG, 4 * SEG + 9, 4 * SEG + 11])
    def test_it_rejects_a_wrong_plain_size(self, claimed: int) -> None:
        dek = new_data_key()
        stored, _ = encrypt(dek, rand_bytes(self.SIZE))
        with pytest.raises(VaultIntegrityError):
            decrypt(dek, stored, claimed)

    @pytest.mark.parametrize("kept", [1, 2, 3, 4])
    def test_it_rejects_truncation_at_a_segment_boundary_with_a_matching_size(
        self, kept: int
    ) -> None:
        """The last-segment flag, not the size, catches a cleanly cut object."""
        dek = new_data_key()
        stored, _ = encrypt(dek, rand_bytes(self.SIZE))
        cut = stored[: HEADER_SIZE + kept * STRIDE]
        with pytest.raises(VaultIntegrityError, match=f"segment {kept - 1} failed"):
            decrypt(dek, cut, kept * SEG)

    def test_it_rejects_a_different_segment_size(self) -> None:
        dek = new_data_key()
        stored, _ = encrypt(dek, rand_bytes(self.SIZE))
        with pytest.raises(VaultIntegrityError, match="segment size"):
            decrypt(dek, stored, self.SIZE, segment_size=2 * SEG)

    def test_it_detects_tampering_in_the_real_segment_size(self) -> None:
        dek = new_data_key()
        size = 2 * SEGMENT_SIZE + 1
        stored, _ = encrypt(dek, rand_bytes(size), segment_size=SEGMENT_SIZE)
        bad = bytearray(stored)
        bad[HEADER_SIZE + SEGMENT_SIZE + TAG_SIZE + 1000] ^= 0x04
        with pytest.raises(VaultIntegrityError, match="segment 1 failed"):
            decrypt(dek, bytes(bad), size, segment_size=SEGMENT_SIZE)
        with pytest.raises(VaultIntegrityError, match="truncated"):
            decrypt(dek, stored[: -TAG_SIZE - 1], size, segment_size=SEGMENT_SIZE)


class TestSizes:
    @pytest.mark.parametrize(
        "plain_size, expected",
        [(0, 16 + 16), (1, 16 + 1 + 16), (SEG, 16 + SEG + 16), (SEG + 1, 16 + SEG + 1 + 32)],
    )
    def test_ciphertext_size(self, plain_size: int, expected: int) -> None:
        assert ciphertext_size(plain_size, SEG) == expected

    def test_new_data_key_is_random_32_bytes(self) -> None:
        assert len(new_data_key()) == 32
        assert new_data_key() != new_data_key()

    def test_benchmark_reports_speeds(self) -> None:
        figures = vault_bench.benchmark(4 * SEGMENT_SIZE)
        assert set(figures) == {"encrypt_mb_s", "decrypt_mb_s"}
        assert all(v > 0 for v in figures.values())
