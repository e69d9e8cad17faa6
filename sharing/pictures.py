"""Picture exports: every frame of a series as JPEG or PNG, read and decoded a frame at a time.

A single-file multi-frame CBCT can be gigabytes, so an instance is never read whole: the
header is parsed through a reader over the vault that keeps one segment decrypted, and
pydicom's decoder reads one frame (or its fragments) from that reader per picture. Memory
holds one decrypted segment, one frame and one picture, whatever the size of the file.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator

import numpy as np
import pydicom
from django.conf import settings
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, as_pixel_options, convert_color_space
from pydicom.uid import UID
from zipstream import ZipStream

from portal import vault
from portal.models import Series, StoredObject
from sharing.archive import ArchiveMember, stream_zip
from viewer import render as rnd
from viewer.overlays import overlay_masks

# One decoded frame may not exceed this; dental frames are a few MB at most.
FRAME_MAX_BYTES = 128 << 20
# Header elements larger than this (private blobs, overlays) are not read unless used.
DEFER_SIZE = 1 << 20
_PIXEL_TAGS = {
    (0x7FE0, 0x0010): "PixelData",
    (0x7FE0, 0x0008): "FloatPixelData",
    (0x7FE0, 0x0009): "DoubleFloatPixelData",
}
_UNDEFINED_LENGTH = 0xFFFFFFFF


class PlainReader(io.RawIOBase):
    """A seekable read-only file over an object's plaintext that keeps one segment decrypted.

    pydicom reads a header in many small pieces; each lands in the cached segment instead of
    decrypting a whole segment per read. A read longer than a segment (a frame) is decrypted
    on its own. Not an io.BufferedReader, which pydicom would take for a named file.
    """

    def __init__(self, obj: StoredObject) -> None:
        self._obj = obj
        self._size = obj.plain_size
        self._segment = obj.segment_size
        self._pos = 0
        self._index = -1
        self._data = b""
        self.failure: Exception | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, n: int | None = -1) -> bytes:
        stop = self._size if n is None or n < 0 else min(self._pos + n, self._size)
        if stop <= self._pos:
            return b""
        if stop - self._pos > self._segment:
            data = self._fetch(self._pos, stop)
        else:
            parts = []
            pos = self._pos
            while pos < stop:
                index = pos // self._segment
                if index != self._index:
                    start = index * self._segment
                    self._data = self._fetch(start, min(start + self._segment, self._size))
                    self._index = index
                offset = pos - index * self._segment
                parts.append(self._data[offset : offset + stop - pos])
                pos += len(parts[-1])
            data = b"".join(parts)
        self._pos = stop
        return data

    def _fetch(self, start: int, stop: int) -> bytes:
        try:
            return vault.read_bytes(self._obj, start, stop)
        except Exception as exc:
            # Kept so that a decoder error wrapping it is not taken for an undecodable file.
            self.failure = exc
            raise

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._data = b""
        super().close()


def _pixel_element(f: PlainReader, tsyntax: UID) -> tuple[str, str | None, int]:
    """Read the pixel element header at f's position; return (keyword, VR, value length)."""
    endian = "<" if tsyntax.is_little_endian else ">"
    head = f.read(8)
    if len(head) < 8:
        raise rnd.DecodeError("The file has no pixel data.")
    group, element = struct.unpack(f"{endian}HH", head[:4])
    keyword = _PIXEL_TAGS.get((group, element))
    if keyword is None:
        raise rnd.DecodeError("The file has no pixel data.")
    if tsyntax.is_implicit_VR:
        return keyword, None, struct.unpack(f"{endian}L", head[4:])[0]
    more = f.read(4)
    if len(more) < 4:
        raise rnd.DecodeError("The pixel data is shorter than the image size declares.")
    return keyword, head[4:6].decode("ascii", "replace"), struct.unpack(f"{endian}L", more)[0]


def iter_frames(f: PlainReader) -> tuple[Dataset, Iterator[np.ndarray]]:
    """Return the header and an iterator of frames, each as rnd.decode_frames would give it.

    Checks that need only the header raise DecodeError here, before any frame is read; a
    frame that fails to decode raises DecodeError from the iterator. Vault errors propagate.
    """
    try:
        ds = pydicom.dcmread(f, defer_size=DEFER_SIZE, stop_before_pixels=True)
    except (InvalidDicomError, EOFError, ValueError, struct.error) as exc:
        if f.failure is not None:
            raise f.failure from None
        raise rnd.DecodeError("The file could not be read as DICOM.") from exc
    geometry = rnd.image_geometry(ds)
    tsyntax = geometry.tsyntax
    rows, cols, frames = geometry.rows, geometry.cols, geometry.frames
    samples, bits = geometry.samples, geometry.bits
    if rows * cols * samples * max(bits, 8) // 8 > FRAME_MAX_BYTES:
        raise rnd.DecodeError("The image is larger than the export accepts.")
    limits = (settings.PORTAL_MAX_IMAGE_PIXELS, settings.PORTAL_MAX_DICOM_PIXELS)
    rnd.check_pixels(geometry, limits, "export")
    decoder = rnd.decoder_for(ds, geometry)
    keyword, vr, length = _pixel_element(f, tsyntax)
    if not tsyntax.is_compressed and bits >= 8 and keyword == "PixelData":
        expected = rows * cols * frames * samples * bits // 8
        if ds.get("PhotometricInterpretation") == "YBR_FULL_422":
            expected = expected * 2 // 3
        if length == _UNDEFINED_LENGTH or length < expected:
            raise rnd.DecodeError("The pixel data is shorter than the image size declares.")
    opts = as_pixel_options(ds, transfer_syntax_uid=tsyntax, pixel_keyword=keyword)
    if vr is not None:
        opts["pixel_vr"] = vr
    return ds, _decoded(ds, f, decoder.iter_array(f, as_rgb=True, **opts), samples, bits)


def _decoded(
    ds: Dataset, f: PlainReader, arrays: Iterator, samples: int, bits: int
) -> Iterator[np.ndarray]:
    """Finish each decoded frame as rnd.decode_frames finishes the whole array."""
    while True:
        try:
            arr, meta = next(arrays)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - every decoder failure means the same here
            if f.failure is not None:
                raise f.failure from None  # storage, not the file: the download must fail
            ts_name = ds.file_meta.TransferSyntaxUID.name
            raise rnd.DecodeError(
                f"Pixel data in {ts_name} could not be decoded (truncated, corrupt or "
                "an unsupported variant)."
            ) from exc
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        photometric = str(
            meta.get("photometric_interpretation", ds.get("PhotometricInterpretation"))
        )
        if photometric == "PALETTE COLOR":
            arr = rnd._to_u8(np.asarray(apply_color_lut(arr, ds)), 16)
        elif samples == 3:
            if photometric in ("YBR_FULL", "YBR_FULL_422"):
                arr = convert_color_space(arr, photometric, "RGB")
            arr = rnd._to_u8(arr, int(ds.get("BitsStored") or bits))
        yield arr


def render_series(series: Series, fmt: str) -> Iterator[tuple[str, bytes]]:
    """Yield (name, picture) for every frame of a series, one frame decoded at a time.

    An instance that cannot be decoded is left out; one that fails part way keeps the
    pictures already made.
    """
    folder = f"Images/Series {series.number or 0:03d}"
    ext = "jpg" if fmt == "jpeg" else "png"
    n = 0
    for instance in series.instances.select_related("blob").order_by("instance_number"):
        with PlainReader(instance.blob) as f:
            try:
                ds, frames = iter_frames(f)
            except rnd.DecodeError:
                continue
            presets = rnd.window_presets(ds)
            masks = _overlays(ds)
            try:
                for k, frame in enumerate(frames):
                    info = rnd.RenderInfo.from_dataset(ds, k)
                    lut = None if presets else rnd.voi_lut(ds, k)
                    window = presets[0] if presets else rnd.auto_window(frame, info)
                    n += 1
                    mask = masks[k] if masks is not None and k < len(masks) else None
                    data = rnd.render_slice(
                        frame, info, window["center"], window["width"], fmt, overlay=mask, lut=lut
                    )
                    yield f"{folder}/{n:04d}.{ext}", data
            except rnd.DecodeError:
                continue


def _overlays(ds: Dataset) -> np.ndarray | None:
    """Return the overlay bits of every frame, drawn into the pictures as in the viewer."""
    try:
        geometry = rnd.image_geometry(ds)
    except rnd.DecodeError:
        return None
    return overlay_masks(ds, geometry.frames, geometry.rows, geometry.cols)


def _then(data: bytes, callback: Callable[[], None]) -> Iterator[bytes]:
    yield data
    callback()


def picture_zip(members: list[ArchiveMember], pictures: Iterator[tuple[str, bytes]]) -> ZipStream:
    """Return a ZIP that renders each picture only when the one before it has been sent.

    The sizes of rendered pictures are not known in advance, so the ZIP is unsized (no
    Content-Length) and memory holds one picture at a time, not the whole export.
    """
    zs = stream_zip(members, {}, sized=False)[0]

    def add_next() -> None:
        item = next(pictures, None)
        if item is not None:
            zs.add(_then(item[1], add_next), item[0])

    add_next()
    return zs
