"""WADO-RS bodies: originals as multipart, metadata as DICOM JSON, frames and rendered images.

Originals stream from the vault part by part (one study is never held in memory), with a
Content-Length computed up front so a client sees a cut-off transfer as a failure.
"""

from __future__ import annotations

import bisect
import io
import secrets
import struct
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pydicom
from pydicom.encaps import encapsulate, generate_frames

from portal import vault
from portal.models import Instance
from viewer import fragments
from viewer.tags import drop_unreadable

FRAME_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.5": "image/x-dicom-rle",
}
INLINE_LIMIT = 64 * 1024
EXTENDED_OFFSET_TABLE = (0x7FE00001, 0x7FE00002)


class FrameError(Exception):
    """The frames asked for do not exist or cannot be cut from the stored file."""


def boundary() -> str:
    return secrets.token_hex(16)


def multipart(parts: list[tuple[str, int, Any]], mark: str) -> tuple[Iterator[bytes], int]:
    """Return (body chunks, total length) of multipart/related parts (type, size, source).

    A source is bytes, a function returning bytes (called when its part is sent) or an
    Instance's stored object, streamed when the body is read.
    """
    heads = [
        f"--{mark}\r\nContent-Type: {ctype}\r\nContent-Length: {size}\r\n\r\n".encode()
        for ctype, size, _ in parts
    ]
    end = f"--{mark}--\r\n".encode()
    total = sum(len(h) + size + 2 for h, (_, size, _) in zip(heads, parts, strict=True))
    total += len(end)

    def body() -> Iterator[bytes]:
        for head, (_, _, source) in zip(heads, parts, strict=True):
            yield head
            if isinstance(source, bytes):
                yield source
            elif callable(source):
                yield source()
            else:
                yield from vault.iter_range(source)
            yield b"\r\n"
        yield end

    return body(), total


def original_parts(instances: list[Instance]) -> list[tuple[str, int, Any]]:
    return [("application/dicom", i.blob.plain_size, i.blob) for i in instances]


# Where each stored original's pixel data lies, by stored object: the object never changes,
# so a warm frame request decrypts only the segments of its frame.
_locations: OrderedDict[uuid.UUID, tuple[int, int, bool]] = OrderedDict()
_locations_lock = threading.Lock()
_MAX_LOCATIONS = 16384
WHOLE_FILE_BYTES = 2 * 2**20


def _pixel_location(instance: Instance, data: bytes | None) -> tuple[int, int, bool]:
    """Return (offset, declared length, encapsulated) of the pixel data of a stored file."""
    # The stored object's code, never its pk: a pk may name another file after a rollback.
    key = instance.blob.code
    with _locations_lock:
        found = _locations.get(key)
        if found is not None:
            _locations.move_to_end(key)
            return found
    try:
        found = fragments.locate(instance.blob, data)
    except fragments.DamagedPixels as exc:
        raise FrameError(str(exc)) from None
    with _locations_lock:
        _locations[key] = found
        while len(_locations) > _MAX_LOCATIONS:
            _locations.popitem(last=False)
    return found


def frames(instance: Instance, numbers: list[int]) -> tuple[str, list[tuple[int, Any]]]:
    """Return (media type, [(size, source)] of each frame asked for) for multipart().

    Uncompressed frames are read from the stored original as their part is sent, so a
    request for many frames of a large instance holds one frame at a time.
    """
    if not numbers or any(n < 1 or n > instance.frames for n in numbers):
        raise FrameError("no such frame")
    blob = instance.blob
    # A small file is read once: one decryption serves the header and the frame.
    data = vault.read_bytes(blob) if blob.plain_size <= WHOLE_FILE_BYTES else None
    offset, length, encapsulated = _pixel_location(instance, data)

    def read(start: int, stop: int) -> bytes:
        return data[start:stop] if data is not None else vault.read_bytes(blob, start, stop)

    if not encapsulated:
        bits = instance.bits_allocated or 8
        frame_len = (instance.rows or 0) * (instance.columns or 0) * instance.samples_per_pixel
        frame_len = frame_len * bits // 8
        if instance.photometric == "YBR_FULL_422":
            frame_len = frame_len * 2 // 3  # two chroma samples shared by each pair of pixels
        if not frame_len:
            raise FrameError("no pixel data")
        if offset + max(numbers) * frame_len > blob.plain_size:
            raise FrameError("no such frame")
        out = [
            (frame_len, partial(read, offset + (n - 1) * frame_len, offset + n * frame_len))
            for n in numbers
        ]
        return "application/octet-stream", out
    ctype = FRAME_TYPES.get(instance.transfer_syntax_uid, "application/octet-stream")
    grouped = _frame_fragments(blob, offset, instance.frames, read)
    if grouped is not None:
        # Only the asked-for frames' fragments are read, as their parts are sent.
        return ctype, [
            (sum(n for _, n in grouped[k - 1]), partial(_join, read, grouped[k - 1]))
            for k in numbers
        ]
    # Fragments that only the codestreams' markers can tell apart: split the whole, without
    # an offset table (had it named this file's items, the index above would have used it).
    stop = blob.plain_size if length == 0xFFFFFFFF else offset + length
    pixels = _without_offset_table(read(offset, stop))
    try:
        all_frames = list(generate_frames(pixels, number_of_frames=instance.frames))
    except (ValueError, KeyError) as exc:
        raise FrameError("encapsulated pixel data could not be split") from exc
    if len(all_frames) < max(numbers):
        raise FrameError("no such frame")
    return ctype, [(len(all_frames[n - 1]), all_frames[n - 1]) for n in numbers]


def _without_offset_table(pixels: bytes) -> bytes:
    if pixels[:4] != ITEM or pixels[4:8] == b"\0\0\0\0":
        return pixels
    table = int.from_bytes(pixels[4:8], "little")
    return ITEM + b"\0\0\0\0" + pixels[8 + table :]


def _join(read: Callable[[int, int], bytes], fragments: list[tuple[int, int]]) -> bytes:
    """Return a frame's fragments joined, read as one range (they are consecutive items)."""
    first, last = fragments[0], fragments[-1]
    data = read(first[0], last[0] + last[1])
    return b"".join(data[start - first[0] : start - first[0] + n] for start, n in fragments)


# Where each frame's fragments lie, by stored object (as _locations): a warm frame of a large
# multi-frame reads its own bytes, not the whole pixel data. Bounded by fragments held.
_fragment_index: OrderedDict[uuid.UUID, list[list[tuple[int, int]]] | None] = OrderedDict()
_indexed_fragments = 0
_MAX_INDEXED_FRAGMENTS = 1_000_000
ITEM = fragments.ITEM


def _frame_fragments(blob, offset: int, frames: int, read) -> list[list[tuple[int, int]]] | None:  # noqa: ANN001
    """Return each frame's fragments as (start, size), or None when only markers tell."""
    global _indexed_fragments  # noqa: PLW0603 - the cache's size, kept under its lock
    with _locations_lock:
        if blob.code in _fragment_index:
            _fragment_index.move_to_end(blob.code)
            return _fragment_index[blob.code]
    # A frame in many fragments is fine; millions of empty items are a file built to hurt.
    limit = min(_MAX_INDEXED_FRAGMENTS, 2 * frames + 1000)
    try:
        found = _group_fragments(_items(blob.plain_size, offset, read, limit), frames, read)
    except fragments.TooManyItems:
        found = None
    held = sum(len(f) for f in found) if found else 0
    with _locations_lock:
        if blob.code not in _fragment_index:
            _fragment_index[blob.code] = found
            _indexed_fragments += held
        while _fragment_index and _indexed_fragments > _MAX_INDEXED_FRAGMENTS:
            _, dropped = _fragment_index.popitem(last=False)
            _indexed_fragments -= sum(len(f) for f in dropped) if dropped else 0
    return found


def _items(size: int, offset: int, read, limit: int) -> list[tuple[int, int, int]]:  # noqa: ANN001
    try:
        return fragments.items(size, offset, read, limit)
    except fragments.DamagedPixels as exc:
        raise FrameError(str(exc)) from None


def _group_fragments(items, frames: int, read) -> list[list[tuple[int, int]]] | None:  # noqa: ANN001
    """Group fragments into frames by the rules of PS3.5 A.4; None if only markers tell."""
    if len(items) < 2:
        raise FrameError("no pixel data")
    table, fragments = items[0], items[1:]
    if frames == 1:
        return [[(start, n) for _, start, n in fragments]]
    if len(fragments) == frames:
        return [[(start, n)] for _, start, n in fragments]
    if table[2] != 4 * frames:
        return None  # no Basic Offset Table (or one that does not fit the frame count)
    offsets = list(struct.unpack(f"<{frames}I", read(table[1], table[1] + table[2])))
    first = fragments[0][0]
    # Each offset must name an item of this file (PS3.5 A.4: from the first fragment's tag);
    # a table off by a few bytes, as some writers make, is not trusted.
    positions = {position - first for position, _, _ in fragments}
    if offsets[0] != 0 or any(b <= a for a, b in zip(offsets, offsets[1:], strict=False)):
        return None
    if not positions.issuperset(offsets):
        return None
    grouped: list[list[tuple[int, int]]] = [[] for _ in range(frames)]
    for position, start, n in fragments:
        grouped[bisect.bisect_right(offsets, position - first) - 1].append((start, n))
    return grouped if all(grouped) else None


def metadata(instance: Instance, instance_url: str) -> dict[str, Any]:
    """Return the stored file's attributes as DICOM JSON, pixel data by reference."""
    with vault.open_blob(instance.blob) as fh:
        ds = pydicom.dcmread(fh, stop_before_pixels=True)
    # An element its VR cannot hold is left out (pydicom's own skipping logs its raw value).
    drop_unreadable(ds)

    def bulk(element) -> str:
        return f"{instance_url}/bulk/{element.tag:08X}"

    out = ds.to_json_dict(bulk_data_threshold=INLINE_LIMIT, bulk_data_element_handler=bulk)
    if instance.rows:
        vr = "OB" if instance.transfer_syntax_uid in FRAME_TYPES else "OW"
        out["7FE00010"] = {"vr": vr, "BulkDataURI": f"{instance_url}/frames/1"}
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        out["00020010"] = {"vr": "UI", "Value": [str(meta.TransferSyntaxUID)]}
    return out


def rendered(instance: Instance, frame: int, fmt: str) -> bytes:
    """Return one frame windowed with the file's own window (or an automatic one)."""
    from viewer.render import DecodeError, auto_window, decode_frames, render_slice, window_presets

    if not 1 <= frame <= instance.frames:
        raise FrameError("no such frame")
    ds = _one_frame(instance, frame)
    try:
        if ds is None:  # pixels this module cannot cut into frames: decode them all
            ds = pydicom.dcmread(io.BytesIO(vault.read_bytes(instance.blob)))
            values = decode_frames(ds)[frame - 1]
        else:
            values = decode_frames(ds)[0]
    except DecodeError as exc:
        raise FrameError(str(exc)) from None
    presets = window_presets(ds)
    window = presets[0] if presets else auto_window(values)
    return render_slice(values, ds, window["center"], window["width"], fmt)


def _one_frame(instance: Instance, frame: int) -> pydicom.Dataset | None:
    """Return the file's header with only this frame's pixels, read by range, or None.

    A cine of a thousand frames is not decoded whole to show one of them.
    """
    if (instance.bits_allocated or 8) < 8:
        return None  # bit-packed frames do not start on a byte
    syntax = pydicom.uid.UID(instance.transfer_syntax_uid)
    if not syntax.is_transfer_syntax or syntax.is_deflated:
        return None  # a private syntax, or a deflated data set: only pydicom reads it whole
    try:
        if fragments.header_of(instance.blob).float_pixels:
            return None  # float pixel data: not cut into frames here
        _, found = frames(instance, [frame])
    except (FrameError, fragments.DamagedPixels):
        return None
    _, source = found[0]
    pixels = source() if callable(source) else source
    with vault.open_blob(instance.blob) as fh:
        ds = pydicom.dcmread(fh, stop_before_pixels=True)
    for tag in EXTENDED_OFFSET_TABLE:  # the whole file's frame offsets, not this frame's
        ds.pop(tag, None)
    if syntax.is_encapsulated:
        ds.add_new(0x7FE00010, "OB", encapsulate([pixels]))
    else:
        ds.add_new(0x7FE00010, "OW" if (instance.bits_allocated or 8) > 8 else "OB", pixels)
    ds.NumberOfFrames = 1
    return ds
