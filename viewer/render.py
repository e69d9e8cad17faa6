"""Turn DICOM pixel data into what a browser paints: decoding, window/level, MPR, JPEG/PNG.

Pure module (pydicom, numpy, Pillow); no Django. Nothing here writes to disk, and no
exception message carries patient data.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, get_decoder
from pydicom.uid import UID, JPEGExtended12Bit

# MPR and the pixel cache live in viewer.volume; re-exported for callers of this module.
from viewer.volume import (  # noqa: F401
    PLANES,
    BoundedCache,
    VolumeCache,
    build_volume,
    plane_size,
    plane_spacing,
    reformat,
    slice_position,
)

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# Refuse to allocate more than this for one decoded object (a 700^3 16-bit CBCT is ~690 MB).
MAX_DECODED_BYTES = 1 << 30

CT_PRESETS = (
    {"name": "Soft tissue", "center": 40.0, "width": 400.0},
    {"name": "Bone", "center": 500.0, "width": 2000.0},
    {"name": "Dental", "center": 1000.0, "width": 4000.0},
    {"name": "Lung", "center": -600.0, "width": 1500.0},
)


class DecodeError(Exception):
    """Pixel data cannot be turned into an image; the message never names the patient."""


# ---------------------------------------------------------------- decoding


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
    if geometry.tsyntax == JPEGExtended12Bit and int(ds.get("BitsStored") or 8) > 8:
        raise DecodeError("12-bit JPEG Extended needs a decoder the viewer does not ship.")
    return decoder


def decode_frames(ds: Dataset, max_bytes: int = MAX_DECODED_BYTES) -> np.ndarray:
    """Decode every frame to (frames, rows, cols) or (frames, rows, cols, 3) uint8 RGB."""
    if not any(kw in ds for kw in PIXEL_KEYWORDS):
        raise DecodeError("The file has no pixel data.")
    geometry = image_geometry(ds)
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


# ---------------------------------------------------------------- modality LUT and windows


@dataclass(frozen=True)
class RenderInfo:
    """The few header values rendering needs, so callers can cache them instead of datasets."""

    slope: float = 1.0
    intercept: float = 0.0
    invert: bool = False  # MONOCHROME1: high values are dark

    @classmethod
    def from_dataset(cls, ds: Dataset) -> RenderInfo:
        """Read rescale and photometric values from top level or enhanced functional groups."""
        slope, intercept = rescale(ds)
        return cls(slope, intercept, str(ds.get("PhotometricInterpretation")) == "MONOCHROME1")


def rescale(ds: Dataset) -> tuple[float, float]:
    """Return (slope, intercept), looking into shared functional groups for enhanced CT."""
    source: Any = ds
    if "RescaleSlope" not in ds and "RescaleIntercept" not in ds:
        try:
            source = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
        except (AttributeError, IndexError):
            return 1.0, 0.0
    slope = float(source.get("RescaleSlope") or 1.0)
    intercept = float(source.get("RescaleIntercept") or 0.0)
    return slope, intercept


def modality_lut(frames: np.ndarray, ds: Dataset) -> np.ndarray:
    """Convert stored values to modality units (HU for CT); keeps integers when nothing changes."""
    if "ModalityLUTSequence" in ds:
        from pydicom.pixels import apply_modality_lut

        return apply_modality_lut(frames, ds)
    slope, intercept = rescale(ds)
    if slope == 1.0 and intercept == 0.0:
        return frames
    if slope == 1.0 and float(intercept).is_integer() and frames.dtype.kind in "iu":
        widened = frames.astype(np.int32)
        widened += int(intercept)
        return widened
    return frames.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def _values(element: Any) -> list[float]:
    if element is None or element == "":
        return []
    if isinstance(element, str | bytes) or not isinstance(element, Iterable):
        return [float(element)]
    return [float(v) for v in element]


def window_presets(ds: Dataset) -> list[dict[str, Any]]:
    """List the file's own windows first, then the standard CT ones, without duplicates."""
    presets: list[dict[str, Any]] = []
    try:
        centers = _values(ds.get("WindowCenter"))
        widths = _values(ds.get("WindowWidth"))
    except (TypeError, ValueError):
        centers, widths = [], []
    names = ds.get("WindowCenterWidthExplanation")
    names = [str(n) for n in _str_values(names)]
    for i, (center, width) in enumerate(zip(centers, widths, strict=False)):
        if width < 1:
            continue
        name = names[i] if i < len(names) and names[i].strip() else f"File window {i + 1}"
        presets.append({"name": name, "center": center, "width": width})
    if str(ds.get("Modality", "")).upper() == "CT":
        seen = {(p["center"], p["width"]) for p in presets}
        presets.extend(dict(p) for p in CT_PRESETS if (p["center"], p["width"]) not in seen)
    return presets


def _str_values(element: Any) -> list[str]:
    if element is None:
        return []
    if isinstance(element, str):
        return [element]
    return [str(v) for v in element]


def auto_window(values: np.ndarray, info: RenderInfo = RenderInfo()) -> dict[str, Any]:
    """Suggest a window from the data's 0.5-99.5 percentiles, for files that carry none."""
    sample = values.reshape(-1)[:: max(1, values.size // 65536)]
    lo, hi = np.percentile(sample.astype(np.float64), (0.5, 99.5)) * info.slope + info.intercept
    width = max(float(hi - lo), 1.0)
    return {"name": "Auto", "center": float(lo) + width / 2, "width": width}


def _voi(x: np.ndarray, center: float, width: float, invert: bool) -> np.ndarray:
    """Apply DICOM PS3.3 C.11.2.1.2.1 linear VOI to float values, giving uint8."""
    width = max(float(width), 1.0)
    lo = center - 0.5 - (width - 1) / 2
    hi = center - 0.5 + (width - 1) / 2
    if width > 1:
        y = ((x - (center - 0.5)) / (width - 1) + 0.5) * 255.0
    else:
        y = np.where(x > hi, 255.0, 0.0)
    y = np.where(x <= lo, 0.0, np.where(x > hi, 255.0, y))
    out = np.rint(np.clip(y, 0, 255)).astype(np.uint8)
    return 255 - out if invert else out


@lru_cache(maxsize=64)
def window_lut(
    center: float,
    width: float,
    slope: float,
    intercept: float,
    invert: bool,
    signed: bool,
    bits: int = 16,
) -> np.ndarray:
    """Build a read-only uint8 LUT indexed by the unsigned view of stored values."""
    n = 1 << bits
    stored = np.arange(n, dtype=np.float64)
    if signed:
        stored[n // 2 :] -= n  # index i holds the two's-complement value i
    lut = _voi(stored * slope + intercept, center, width, invert)
    lut.setflags(write=False)
    return lut


_UNSIGNED = {np.dtype(np.int16): np.uint16, np.dtype(np.int8): np.uint8}


def apply_window(
    values: np.ndarray,
    center: float,
    width: float,
    invert: bool = False,
    *,
    slope: float = 1.0,
    intercept: float = 0.0,
) -> np.ndarray:
    """Map values (stored values, with slope/intercept folded in) through the window to uint8."""
    dtype = values.dtype
    if dtype.kind in "iu" and dtype.itemsize <= 2 and dtype.isnative:
        lut = window_lut(
            float(center),
            float(width),
            float(slope),
            float(intercept),
            bool(invert),
            dtype.kind == "i",
            dtype.itemsize * 8,
        )
        index = values.view(_UNSIGNED.get(dtype, dtype))
        return np.take(lut, index)
    x = values.astype(np.float32)
    if slope != 1.0 or intercept != 0.0:
        x = x * np.float32(slope) + np.float32(intercept)
    return _voi(x, center, width, invert)


# ---------------------------------------------------------------- encoding


def _image(img_u8: np.ndarray) -> Image.Image:
    if img_u8.dtype != np.uint8:
        raise ValueError("Images to encode must be uint8.")
    if img_u8.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(img_u8), mode="L")
    if img_u8.ndim == 3 and img_u8.shape[2] == 3:
        return Image.fromarray(np.ascontiguousarray(img_u8), mode="RGB")
    raise ValueError("Images to encode must be (rows, cols) or (rows, cols, 3).")


def encode_jpeg(img_u8: np.ndarray, quality: int = 85) -> bytes:
    """Encode grayscale (L) or RGB as baseline JPEG, tuned for speed over the last few bytes."""
    buf = io.BytesIO()
    _image(img_u8).save(buf, "JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def encode_png(img_u8: np.ndarray) -> bytes:
    """Encode losslessly; compress_level 1 as higher levels cost time for a few % on noisy CT."""
    buf = io.BytesIO()
    _image(img_u8).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def thumbnail(img_u8: np.ndarray, size: int = 128) -> bytes:
    """Return a JPEG fitting in size x size, keeping the aspect ratio."""
    image = _image(img_u8)
    image.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def render_slice(
    values2d: np.ndarray,
    ds_info: RenderInfo | Dataset | Mapping[str, Any],
    center: float,
    width: float,
    fmt: str = "jpeg",
    invert: bool = False,
    quality: int = 85,
) -> bytes:
    """Window one stored-value slice and encode it; `invert` flips on top of MONOCHROME1."""
    if isinstance(ds_info, Dataset):
        info = RenderInfo.from_dataset(ds_info)
    elif isinstance(ds_info, RenderInfo):
        info = ds_info
    else:
        info = RenderInfo(**dict(ds_info))
    if values2d.ndim == 3 and values2d.shape[-1] == 3 and values2d.dtype == np.uint8:
        img = 255 - values2d if invert else values2d  # colour: no window applies
    else:
        img = apply_window(
            values2d,
            center,
            width,
            info.invert != invert,
            slope=info.slope,
            intercept=info.intercept,
        )
    if fmt == "jpeg":
        return encode_jpeg(img, quality)
    if fmt == "png":
        return encode_png(img)
    raise ValueError("fmt must be 'jpeg' or 'png'.")


# ---------------------------------------------------------------- benchmark


def synthetic_ct_slice(size: int = 512, seed: int = 0) -> np.ndarray:
    """Make a CT-like int16 slice (air, soft tissue disc, bone ring, noise) for tests and timing."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2) / (size / 2)
    hu = np.full((size, size), -1000.0)
    hu[r < 0.85] = 40.0
    hu[(r > 0.7) & (r < 0.8)] = 1200.0
    hu[(np.abs(yy - size * 0.45) < size * 0.05) & (r < 0.5)] = -500.0
    hu += rng.normal(0, 15, hu.shape)
    return (hu + 1024).astype(np.int16)  # stored values with intercept -1024


def benchmark_render(n: int = 200) -> dict[str, float]:
    """Time window LUT and JPEG/PNG encode on a 512x512 slice; p50 in ms plus sizes."""
    stored = synthetic_ct_slice()
    times: dict[str, list[float]] = {"window_ms": [], "float_window_ms": [], "jpeg_ms": []}
    img = apply_window(stored, 40, 400, intercept=-1024)
    for _ in range(n):
        t0 = time.perf_counter()
        img = apply_window(stored, 40, 400, intercept=-1024)
        t1 = time.perf_counter()
        data = encode_jpeg(img)
        t2 = time.perf_counter()
        times["window_ms"].append((t1 - t0) * 1000)
        times["jpeg_ms"].append((t2 - t1) * 1000)
    for _ in range(max(1, n // 10)):
        t0 = time.perf_counter()
        _voi(stored.astype(np.float32) - 1024, 40, 400, False)
        times["float_window_ms"].append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    png = encode_png(img)
    png_ms = (time.perf_counter() - t0) * 1000
    result = {k: float(np.median(v)) for k, v in times.items()}
    result.update(jpeg_kb=len(data) / 1024, png_ms=png_ms, png_kb=len(png) / 1024)
    return result
