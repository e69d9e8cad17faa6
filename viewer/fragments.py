"""Where a stored file's pixel data lies, and its encapsulated items, read by range.

Large objects (a cine, a video) are never decrypted whole to find one frame or to stream
their fragments: the header is parsed from the first bytes and item headers are read
through a window of about a megabyte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from portal import vault
from portal.ingest.sniff import (
    HEAD_BYTES,
    MAX_HEADER_BYTES,
    DicomHeader,
    NeedMore,
    Rejected,
    parse_dicom,
)

ITEM = b"\xfe\xff\x00\xe0"
SEQUENCE_END = b"\xfe\xff\xdd\xe0"
WINDOW = 2**20

Read = Callable[[int, int], bytes]


class DamagedPixels(Exception):
    """The pixel data cannot be found or its items do not add up."""


class TooManyItems(Exception):
    """More items than any sensible writer makes for this object: not indexed."""


def locate(blob, data: bytes | None = None) -> tuple[int, int, bool]:  # noqa: ANN001
    """Return (offset, declared length, encapsulated) of a stored file's pixel data."""
    header = header_of(blob, data)
    return header.pixel_value_offset, header.pixel_length, header.encapsulated


def header_of(blob, data: bytes | None = None) -> DicomHeader:  # noqa: ANN001
    """Return ingest's reading of a stored file's header (pixel data's place and kind).

    `data` is the whole file when the caller has it; otherwise the header is read from
    the vault, more of it only when it is longer than the first read.
    """
    size = blob.plain_size
    want = size if data is not None else min(size, HEAD_BYTES)
    while True:
        head = data if data is not None else vault.read_bytes(blob, 0, want)
        try:
            return parse_dicom(head, want >= size)
        except NeedMore:
            if want >= min(size, MAX_HEADER_BYTES):
                raise DamagedPixels("header too large") from None
            want = min(size, want * 2, MAX_HEADER_BYTES)
        except Rejected as exc:
            raise DamagedPixels(str(exc)) from None


def items(size: int, offset: int, read: Read, limit: int) -> list[tuple[int, int, int]]:
    """Return the encapsulated items as (tag position, value start, value size), in order."""
    found: list[tuple[int, int, int]] = []
    window_start, window = offset, b""
    pos = offset
    while pos + 8 <= size:
        if len(found) > limit:
            raise TooManyItems
        if not window_start <= pos <= window_start + len(window) - 8:
            window_start, window = pos, read(pos, min(size, pos + WINDOW))
        head = window[pos - window_start : pos - window_start + 8]
        if head[:4] == SEQUENCE_END:
            return found
        if head[:4] != ITEM:
            raise DamagedPixels("encapsulated pixel data is damaged")
        length = int.from_bytes(head[4:], "little")
        if length == 0xFFFFFFFF or pos + 8 + length > size:
            raise DamagedPixels("encapsulated pixel data is damaged")
        found.append((pos, pos + 8, length))
        pos += 8 + length
    raise DamagedPixels("encapsulated pixel data is damaged")


def stream(blob, fragments: list[tuple[int, int, int]]) -> Iterator[bytes]:  # noqa: ANN001
    """Yield the values of consecutive items, their 8-byte item headers left out.

    One pass over the vault from the first value to the last: a file of thousands of tiny
    fragments costs what its size costs, not a decryption per fragment.
    """
    if not fragments:
        return
    keep = [(start, start + length) for _, start, length in fragments if length]
    if not keep:
        return
    pos, k = keep[0][0], 0
    for chunk in vault.iter_range(blob, keep[0][0], keep[-1][1]):
        end = pos + len(chunk)
        while k < len(keep) and keep[k][0] < end:
            lo, hi = max(keep[k][0], pos), min(keep[k][1], end)
            if lo < hi:
                yield chunk[lo - pos : hi - pos]
            if keep[k][1] > end:
                break
            k += 1
        pos = end
