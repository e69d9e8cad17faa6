"""DICOM pixel data to arrays: transfer syntax checks, pixel limits and decoders.

Pure module (pydicom, numpy); no Django. Re-exported by viewer.render.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, get_decoder
from pydicom.uid import UID

from viewer import codecs  # noqa: F401 - registers the 12-bit JPEG decoder

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# Refuse to allocate more than this for one decoded object (a 700^3 16-bit CBCT is ~690 MB).
MAX_DECODED_BYTES = 1 << 30
# (rows x columns x samples of a frame, of a whole file), as ingest's defaults; callers
# with settings pass theirs (PORTAL_MAX_IMAGE_PIXELS, PORTAL_MAX_DICOM_PIXELS).
PIXEL_LIMITS = (100_000_000, 1 << 30)


class DecodeError(Exception):
    """Pixel data cannot be turned into an image; the message never names the patient."""


@dataclass(frozen=True)
class ImageGeometry:
    """What a header declares about its pixels, checked to be present and positive."""

    tsyntax: UID
    ts_name: str
    rows: int
    cols: int
    frames: int
    samples: int
    bits: int


def image_geometry(ds: Dataset) -> ImageGeometry:
    """Read the transfer syntax and image size elements, or raise DecodeError saying which."""
    file_meta = getattr(ds, "file_meta", None)
    tsyntax = getattr(file_meta, "TransferSyntaxUID", None) if file_meta is not None else None
    if tsyntax is None:
        raise DecodeError("The file does not declare a transfer syntax.")
    tsyntax = UID(tsyntax)
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames") or 1)
        samples = int(ds.get("SamplesPerPixel") or 1)
        bits = int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError) as exc:
        raise DecodeError("The image size elements are missing or invalid.") from exc
    if min(rows, cols, frames, samples, bits) < 1:
        raise DecodeError("The image size elements are missing or invalid.")
    name = getattr(tsyntax, "name", str(tsyntax))
    return ImageGeometry(tsyntax, name, rows, cols, frames, samples, bits)


def decoder_for(ds: Dataset, geometry: ImageGeometry):  # noqa: ANN201 - pydicom's Decoder
    """Return pydicom's decoder for the file, or raise DecodeError if none may be used."""
    try:
        decoder = get_decoder(geometry.tsyntax)
    except NotImplementedError as exc:
        raise DecodeError(f"Transfer syntax {geometry.ts_name} is not supported.") from exc
    if not decoder.is_available:
        raise DecodeError(f"No decoder is installed for {geometry.ts_name}.")
    return decoder


def check_pixels(geometry: ImageGeometry, limits: tuple[int, int], what: str) -> None:
    """Refuse, before decoding, a frame or file past (frame pixels, file pixels) limits."""
    frame = geometry.rows * geometry.cols * geometry.samples
    if frame > limits[0] or frame * geometry.frames > limits[1]:
        raise DecodeError(f"The image has more pixels than the {what} accepts.")


def decode_frames(
    ds: Dataset,
    max_bytes: int = MAX_DECODED_BYTES,
    limits: tuple[int, int] = PIXEL_LIMITS,
) -> np.ndarray:
    """Decode every frame to (frames, rows, cols) or (frames, rows, cols, 3) uint8 RGB."""
    if not any(kw in ds for kw in PIXEL_KEYWORDS):
        raise DecodeError("The file has no pixel data.")
    geometry = image_geometry(ds)
    check_pixels(geometry, limits, "viewer")
    tsyntax, ts_name = geometry.tsyntax, geometry.ts_name
    rows, cols, frames = geometry.rows, geometry.cols, geometry.frames
    samples, bits = geometry.samples, geometry.bits
    if rows * cols * frames * samples * max(bits, 8) // 8 > max_bytes:
        raise DecodeError("The image is larger than the viewer accepts.")
    decoder = decoder_for(ds, geometry)
    if not tsyntax.is_compressed and bits >= 8 and "PixelData" in ds:
        expected = rows * cols * frames * samples * bits // 8
        if ds.get("PhotometricInterpretation") == "YBR_FULL_422":
            expected = expected * 2 // 3
        if len(ds.PixelData) < expected:
            raise DecodeError("The pixel data is shorter than the image size declares.")
    try:
        arr, meta = decoder.as_array(ds, as_rgb=True)
    except Exception as exc:  # noqa: BLE001 - every decoder failure means the same to a viewer
        raise DecodeError(
            f"Pixel data in {ts_name} could not be decoded (truncated, corrupt or "
            "an unsupported variant)."
        ) from exc

    if samples == 1:
        arr = arr.reshape(frames, rows, cols)
    else:
        arr = arr.reshape(frames, rows, cols, samples)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    photometric = str(meta.get("photometric_interpretation", ds.get("PhotometricInterpretation")))
    if photometric == "PALETTE COLOR":
        arr = _to_u8(np.asarray(apply_color_lut(arr, ds)), 16)
    elif samples == 3:
        if photometric in ("YBR_FULL", "YBR_FULL_422"):
            # The decoder normally converts; keep this for plugins that do not.
            from pydicom.pixels import convert_color_space

            arr = convert_color_space(arr, photometric, "RGB")
        arr = _to_u8(arr, int(ds.get("BitsStored") or bits))
    return arr


def _to_u8(arr: np.ndarray, bits_stored: int) -> np.ndarray:
    """Scale colour samples of any depth to 8 bits, as browsers only show 8-bit colour."""
    if arr.dtype == np.uint8:
        return arr
    shift = max(bits_stored, 8) - 8
    if arr.dtype.itemsize * 8 <= shift:
        shift = arr.dtype.itemsize * 8 - 8
    return (arr >> shift).astype(np.uint8)


def is_colour(frames: np.ndarray) -> bool:
    """Tell whether decoded frames are RGB (no window/level applies)."""
    return frames.ndim == 4
