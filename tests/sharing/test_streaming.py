from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from sharing.streaming import Prefetched

BIG = bytes(Prefetched.SMALL)


class Source:
    """A chunk source that records how far it was read and whether it was closed."""

    def __init__(self, chunks: list[bytes], fail: Exception | None = None) -> None:
        self.chunks = chunks
        self.fail = fail
        self.read = 0
        self.closed = False
        self.thread: threading.Thread | None = None

    def __iter__(self) -> Iterator[bytes]:
        self.thread = threading.current_thread()
        try:
            for chunk in self.chunks:
                self.read += 1
                yield chunk
            if self.fail is not None:
                raise self.fail
        finally:
            self.closed = True


def test_it_yields_every_byte_in_order_joining_runs_of_small_chunks() -> None:
    small = [b"PK\x03\x04", b"header", b"descriptor"]
    source = Source([*small, BIG, b"tail", b"end"])
    chunks = list(Prefetched(source))
    assert chunks == [b"".join(small), BIG, b"tailend"]
    assert chunks[1] is BIG
    assert source.closed
    assert source.thread is not threading.current_thread()


def test_it_reads_at_most_depth_chunks_ahead() -> None:
    source = Source([BIG] * 50)
    stream = Prefetched(source, depth=3)
    next(stream)
    time.sleep(0.05)
    assert source.read <= 1 + 3 + 1
    stream.close()


def test_an_error_in_the_source_reaches_the_reader_after_the_chunks_before_it() -> None:
    source = Source([BIG, BIG], fail=ValueError("segment 2 failed authentication"))
    stream = Prefetched(source)
    assert next(stream) is BIG
    assert next(stream) is BIG
    with pytest.raises(ValueError, match="segment 2"):
        next(stream)
    with pytest.raises(StopIteration):
        next(stream)


def test_close_stops_the_thread_and_closes_the_source() -> None:
    source = Source([BIG] * 100)
    stream = Prefetched(source, depth=2)
    next(stream)
    stream.close()
    assert source.closed
    assert stream._thread is not None and not stream._thread.is_alive()
    assert source.read < 10
    with pytest.raises(StopIteration):
        next(stream)


def test_close_before_the_first_chunk_reads_nothing() -> None:
    def source() -> Iterator[bytes]:
        raise AssertionError("read")
        yield b""

    chunks = source()
    stream = Prefetched(chunks)
    stream.close()
    assert stream._thread is None
    assert chunks.gi_frame is None
