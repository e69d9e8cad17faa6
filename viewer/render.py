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

from portal.ingest.groups import frame_value

# Decoding lives in viewer.decoding; re-exported for callers of this module.
from viewer.decoding import (  # noqa: F401
    MAX_DECODED_BYTES,
    PIXEL_KEYWORDS,
    PIXEL_LIMITS,
    DecodeError,
    ImageGeometry,
    _to_u8,
    check_pixels,
    decode_frames,
    decoder_for,
    image_geometry,
    is_colour,
)

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

CT_PRESETS = (
    {"name": "Soft tissue", "center": 40.0, "width": 400.0},
    {"name": "Bone", "center": 500.0, "width": 2000.0},
    {"name": "Dental", "center": 1000.0, "width": 4000.0},
    {"name": "Lung", "center": -600.0, "width": 1500.0},
)


# ---------------------------------------------------------------- modality LUT and windows


@dataclass(frozen=True)
class RenderInfo:
    """The few header values rendering needs, so callers can cache them instead of datasets."""

    slope: float = 1.0
    intercept: float = 0.0
    invert: bool = False  # MONOCHROME1: high values are dark

    @classmethod
    def from_dataset(cls, ds: Dataset, frame: int = 0) -> RenderInfo:
        """Read rescale and photometric values from top level or enhanced functional groups."""
        slope, intercept = rescale(ds, frame)
        shape = str(ds.get("PresentationLUTShape") or "").upper()
        if shape in ("IDENTITY", "INVERSE"):
            return cls(slope, intercept, shape == "INVERSE")
        return cls(slope, intercept, str(ds.get("PhotometricInterpretation")) == "MONOCHROME1")


def rescale(ds: Dataset, frame: int = 0) -> tuple[float, float]:
    """Return (slope, intercept) of a frame, from its functional groups or the top level."""
    try:
        slope = float(frame_value(ds, "RescaleSlope", frame) or 1.0)
        intercept = float(frame_value(ds, "RescaleIntercept", frame) or 0.0)
    except (TypeError, ValueError):
        return 1.0, 0.0
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
        centers = _values(frame_value(ds, "WindowCenter"))
        widths = _values(frame_value(ds, "WindowWidth"))
    except (TypeError, ValueError):
        centers, widths = [], []
    names = frame_value(ds, "WindowCenterWidthExplanation")
    names = [str(n) for n in _str_values(names)]
    for i, (center, width) in enumerate(zip(centers, widths, strict=False)):
        if width < 1:
            continue
        # An unnamed window is the one the scanner saved with the images.
        unnamed = "Scanner's window" if i == 0 else f"Scanner's window {i + 1}"
        name = names[i] if i < len(names) and names[i].strip() else unnamed
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
    overlay: np.ndarray | None = None,
    lut: VoiLut | None = None,
) -> bytes:
    """Window one stored-value slice and encode it; `invert` flips on top of MONOCHROME1.

    overlay, a bool mask of the slice's size, is drawn in white over the windowed image;
    lut, the file's VOI LUT, replaces the window when given.
    """
    if isinstance(ds_info, Dataset):
        info = RenderInfo.from_dataset(ds_info)
    elif isinstance(ds_info, RenderInfo):
        info = ds_info
    else:
        info = RenderInfo(**dict(ds_info))
    if values2d.ndim == 3 and values2d.shape[-1] == 3 and values2d.dtype == np.uint8:
        img = 255 - values2d if invert else values2d  # colour: no window applies
    elif lut is not None:
        img = apply_voi_lut(values2d, info, lut)
        img = 255 - img if invert else img
    else:
        img = apply_window(
            values2d,
            center,
            width,
            info.invert != invert,
            slope=info.slope,
            intercept=info.intercept,
        )
    if overlay is not None:
        from viewer.overlays import draw

        img = draw(img, overlay)
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


# ---------------------------------------------------------------- VOI LUT


@dataclass(frozen=True)
class VoiLut:
    """A VOI LUT Sequence item: first mapped input value, the table, its output range."""

    first: int
    table: np.ndarray
    top: int

    def window(self) -> dict[str, Any]:
        """Return the window that spans the LUT's input range, for the viewer's presets."""
        width = float(len(self.table))
        return {"name": "File VOI LUT", "center": self.first + width / 2, "width": width}


def voi_lut(ds: Dataset, frame: int = 0) -> VoiLut | None:
    """Return the first VOI LUT of a frame (functional groups, else top level), or None."""
    sequence = frame_value(ds, "VOILUTSequence", frame)
    if not sequence:
        return None
    try:
        item = sequence[0]
        count, first, bits = (int(v) for v in item.LUTDescriptor)
        raw = item.LUTData
        if isinstance(raw, bytes | bytearray):
            table = np.frombuffer(raw, dtype="<u2" if bits > 8 else "u1")
        else:
            table = np.asarray(raw if isinstance(raw, list | tuple) else [raw], dtype=np.int64)
    except (AttributeError, TypeError, ValueError, IndexError):
        return None
    count = count or 65536
    table = np.asarray(table[:count], dtype=np.float64)
    if not len(table):
        return None
    signed = ds.get("PixelRepresentation") == 1
    if first >= 32768 and signed:  # US descriptor holding a negative first value
        first -= 65536
    top = max(float((1 << bits) - 1) if 0 < bits <= 16 else 0.0, float(table.max()), 1.0)
    return VoiLut(first, table, int(top))


def apply_voi_lut(values: np.ndarray, info: RenderInfo, lut: VoiLut) -> np.ndarray:
    """Map stored values through the modality rescale and the VOI LUT to uint8."""
    x = values.astype(np.float64) * info.slope + info.intercept
    index = np.clip(np.rint(x) - lut.first, 0, len(lut.table) - 1).astype(np.int64)
    out = np.rint(lut.table[index] * (255.0 / lut.top)).astype(np.uint8)
    return 255 - out if info.invert else out
