"""Decoded pixels for the slice views: frames, whole volumes and the planes cut from them.

Decoded pixels live only in process memory (a bounded LRU), never on disk. A volume comes
from its stored encrypted copy (viewer.volumes) in one sequential read when there is one,
and is decoded from the series' files only when there is not.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Hashable
from typing import Any

import numpy as np
import pydicom
from django.conf import settings

from portal import vault
from portal.models import Series, StoredObject
from viewer import layouts, overlays, render, volumes
from viewer.layouts import Layout, SliceRef

PLANES = render.PLANES
JPEG_QUALITY = 85
# Slices tried, spread over the series, before calling the whole series undecodable.
PROBES = 5

_pixels: render.BoundedCache | None = None
_images: render.BoundedCache | None = None
_lock = threading.Lock()
_build_locks: dict[Hashable, threading.Lock] = {}
_transposing: set[Hashable] = set()
_luts: dict[Hashable, render.VoiLut | None] = {}


def pixel_cache() -> render.BoundedCache:
    """Return the process-wide decoded-pixel cache, sized by PORTAL_VIEWER_CACHE_BYTES."""
    global _pixels
    if _pixels is None:
        _pixels = render.BoundedCache(settings.PORTAL_VIEWER_CACHE_BYTES)
    return _pixels


def image_cache() -> render.BoundedCache:
    """Return the process-wide cache of encoded images (JPEG/PNG), sized by setting.

    Scrolling back and forth asks for the same images again; encoding costs more than the
    rest of a warm request.
    """
    global _images
    if _images is None:
        _images = render.BoundedCache(settings.PORTAL_VIEWER_IMAGE_CACHE_BYTES)
    return _images


def clear_caches() -> None:
    """Drop every decoded pixel, encoded image and layout, e.g. for cold timings."""
    pixel_cache().clear()
    image_cache().clear()
    layouts.clear()
    with _lock:
        _luts.clear()


def forget(series: Series) -> None:
    """Drop one series' layout and decoded pixels, e.g. after a worker built its thumbnail."""
    layout = layouts.pop(series.code)
    if layout is None:
        return
    cache = pixel_cache()
    for kind in ("v", "t"):
        cache.discard((kind, layout.key))
    for ref in layout.slices:
        cache.discard(("f", layout.key, ref.blob.code))
    image_cache().discard_where(lambda key: key[0] == layout.key)


def _build_lock(key: Hashable) -> threading.Lock:
    with _lock:
        return _build_locks.setdefault(key, threading.Lock())


def _drop_build_lock(key: Hashable) -> None:
    """Forget a build lock once its array is cached; a later miss simply makes a new one."""
    with _lock:
        _build_locks.pop(key, None)


def default_window(layout: Layout) -> dict[str, Any]:
    """Return the file's first window, its VOI LUT's range, else one measured from a slice."""
    if layout.window is not None:
        return layout.window
    if layout.voi_lut:
        index = first_decodable(layout)
        table = voi_lut_of(layout, index)
        if table is not None:
            layout.window = {**table.window(), "lut": True}
            return layout.window
    if layout.auto_window is None:
        values = axial_values(layout, first_decodable(layout))
        layout.auto_window = render.auto_window(values, layout.slices[0].info)
    return layout.auto_window


# ---------------------------------------------------------------- decoding


def _dataset(blob: StoredObject) -> pydicom.Dataset:
    data = vault.read_bytes(blob)
    try:
        return pydicom.dcmread(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - any parse failure means "cannot show"
        raise render.DecodeError("The file could not be read as DICOM.") from exc


def decode_blob(blob: StoredObject) -> np.ndarray:
    """Decrypt and decode one stored DICOM to its frames, in memory only."""
    limits = (settings.PORTAL_MAX_IMAGE_PIXELS, settings.PORTAL_MAX_DICOM_PIXELS)
    return render.decode_frames(_dataset(blob), limits=limits)


def _frames(layout: Layout, ref: SliceRef) -> np.ndarray:
    key = ("f", layout.key, ref.blob.code)
    return pixel_cache().get_or_build(key, lambda: decode_blob(ref.blob))


class VolumeTooLarge(Exception):
    """The decoded volume would not fit the pixel cache, so it is not built at all."""


def volume_bytes(layout: Layout) -> int:
    """Return the size the decoded volume would have (modality values are float32)."""
    itemsize = 2 if layout.uniform_info else 4
    return (
        len(layout.slices) * layout.rows * layout.columns * itemsize * (3 if layout.colour else 1)
    )


def volume(layout: Layout) -> np.ndarray:
    """Return the decoded (z, y, x) volume, building it once even under concurrent requests."""
    key = ("v", layout.key)
    cache = pixel_cache()
    vol = cache.get(key)
    if vol is not None:
        return vol
    # A volume the cache cannot keep would be decoded again for every reformatted image,
    # each time holding the whole volume in memory: refuse instead.
    if volume_bytes(layout) > cache.max_bytes:
        raise VolumeTooLarge("This series is too large to reformat; the axial view works.")
    with _build_lock(key):
        vol = cache.get(key)
        if vol is None and not layout.volume_error:
            vol = volumes.load(layout)
            if vol is None:
                vol = _decode_volume(layout)
                if vol is not None:
                    volumes.save(layout, vol)  # the next process reads it in one pass
            if vol is not None:
                cache.put(key, vol)
                for ref in layout.slices:  # the volume now holds these frames
                    cache.discard(("f", layout.key, ref.blob.code))
    _drop_build_lock(key)
    if vol is None:
        raise render.DecodeError(layout.volume_error)
    return vol


def _decode_volume(layout: Layout) -> np.ndarray | None:
    """Decode every slice into a volume; on failure note why on the layout and return None."""
    try:
        return decode_volume(layout)
    except render.DecodeError as exc:
        layout.volume_error = (
            f"Coronal and sagittal views need every slice, and one cannot be decoded: {exc}"
        )
        return None


def decode_volume(layout: Layout) -> np.ndarray:
    """Decode the series' files into its (z, y, x) volume of stored or modality values."""
    cache = pixel_cache()
    if len({s.blob.pk for s in layout.slices}) == 1:
        frames = cache.get(("f", layout.key, layout.slices[0].blob.code))
        arr = frames if frames is not None else decode_blob(layout.slices[0].blob)
        order = [ref.frame for ref in layout.slices]
        if order != list(range(len(arr))):  # frames sorted by their own positions
            arr = arr[order]
        return _as_modality(arr, [ref.info for ref in layout.slices], layout.uniform_info)
    out: np.ndarray | None = None
    for z, ref in enumerate(layout.slices):
        frames = cache.get(("f", layout.key, ref.blob.code))
        if frames is None:
            frames = decode_blob(ref.blob)
        plane = frames[ref.frame]
        if not layout.uniform_info:
            plane = _modality(plane, ref.info)
        if out is None:
            out = np.empty((len(layout.slices), *plane.shape), dtype=plane.dtype)
        if plane.shape != out.shape[1:]:
            raise render.DecodeError("The slices of the series differ in size.")
        out[z] = plane
    assert out is not None
    return out


def _modality(plane: np.ndarray, info: render.RenderInfo) -> np.ndarray:
    return plane.astype(np.float32) * np.float32(info.slope) + np.float32(info.intercept)


def _as_modality(arr: np.ndarray, infos: list[render.RenderInfo], uniform: bool) -> np.ndarray:
    if uniform:
        return arr
    return np.stack([_modality(a, i) for a, i in zip(arr, infos, strict=True)])


def _volume_info(layout: Layout) -> render.RenderInfo:
    """Return how to window volume values: stored values, or modality values when mixed."""
    if layout.uniform_info:
        return layout.slices[0].info
    return render.RenderInfo(1.0, 0.0, layout.slices[0].info.invert)


# The occlusal plane runs between the upper and lower crowns (in the gap a bite block leaves):
# a dental CBCT opens this far below it, through the lower crowns, as the dental view does.
BELOW_OCCLUSAL_MM = 3.0


def viewing_slice(layout: Layout) -> int:
    """Return the slice a series opens on: through a dental CBCT's lower crowns, else the
    middle one."""
    last = len(layout.slices) - 1
    plane = layout.opening_slice
    if plane is None or not 0 <= plane <= last:
        return len(layout.slices) // 2
    below = round(BELOW_OCCLUSAL_MM / (abs(layout.voxel_spacing()[0]) or 1.0))
    # Index 0 is the head's end unless head_last: "below" runs the other way then.
    return min(max(plane + (-below if layout.head_last else below), 0), last)


def probe_indices(layout: Layout) -> list[int]:
    """Return the opening slice (viewing_slice), then a few spread from first to last, without
    repeats."""
    last = len(layout.slices) - 1
    spread = (round(k * last / (PROBES - 1)) for k in range(PROBES))
    return list(dict.fromkeys([viewing_slice(layout), *spread]))


def first_decodable(layout: Layout) -> int:
    """Return the first probed slice that decodes; raise the middle's DecodeError if none does.

    One corrupt file must not condemn a 450-slice series, so only a series whose probes
    all fail counts as undecodable.
    """
    error: render.DecodeError | None = None
    for index in probe_indices(layout):
        try:
            axial_values(layout, index)
        except render.DecodeError as exc:
            error = error or exc
        else:
            return index
    raise error or render.DecodeError("The series has no images.")


def axial_values(layout: Layout, index: int) -> np.ndarray:
    """Return the values of one axial slice or stack image."""
    return _axial(layout, index)[0]


def _axial(layout: Layout, index: int) -> tuple[np.ndarray, render.RenderInfo]:
    if not 0 <= index < len(layout.slices):
        raise IndexError("Slice index is outside the series.")
    vol = pixel_cache().get(("v", layout.key))
    if vol is not None:
        return vol[index], _volume_info(layout)
    ref = layout.slices[index]
    frames = _frames(layout, ref)
    if ref.frame >= len(frames):
        raise render.DecodeError("The file holds fewer frames than it declares.")
    return frames[ref.frame], ref.info


def plane_values(layout: Layout, plane: str, index: int) -> tuple[np.ndarray, render.RenderInfo]:
    """Return one image of a plane and the RenderInfo that windows it."""
    if plane == "axial":
        return _axial(layout, index)
    if layout.kind != "volume" or plane not in PLANES:
        raise IndexError("This series has no such plane.")
    if not 0 <= index < layout.plane_count(plane):
        raise IndexError("Slice index is outside the volume.")
    if plane == "sagittal":
        return _sagittal(layout, index), _volume_info(layout)
    vol = volume(layout)
    return render.reformat(vol, plane, index, z_ascending=layout.head_last), _volume_info(layout)


def _sagittal(layout: Layout, index: int) -> np.ndarray:
    """Return one sagittal cut, superior up.

    Cutting (z, y, x) at fixed x touches one cache line per voxel (about 6 ms for 450x512);
    a transposed (x, z, y) copy makes each cut about 0.5 ms but costs about 0.35 s to make,
    so the first cuts are strided while a background thread makes the copy.
    """
    arr = pixel_cache().get(("t", layout.key))
    step = -1 if layout.head_last else 1  # head at the top
    if arr is not None:
        return arr[index][::step]
    vol = volume(layout)
    if 2 * vol.nbytes <= pixel_cache().max_bytes:  # else the copy would evict the volume
        _transpose_in_background(layout.key, vol)
    return vol[:, :, index][::step]


def _transpose_in_background(key: Hashable, vol: np.ndarray) -> None:
    with _lock:
        if key in _transposing:
            return
        _transposing.add(key)

    def work() -> None:
        try:
            arr = np.empty((vol.shape[2], vol.shape[0], vol.shape[1]), dtype=vol.dtype)
            for z in range(vol.shape[0]):
                arr[:, z, :] = vol[z].T
            pixel_cache().put(("t", key), arr)
        finally:
            with _lock:
                _transposing.discard(key)

    threading.Thread(target=work, name="sagittal-copy", daemon=True).start()


def render_plane(
    layout: Layout,
    plane: str,
    index: int,
    center: float,
    width: float,
    invert: bool = False,
    fmt: str = "jpeg",
    overlay: bool = True,
    lut: bool = False,
) -> bytes:
    """Render one windowed image of a plane as JPEG or PNG bytes, overlays drawn if asked.

    lut=True shows an axial image through the file's own VOI LUT instead of the window.
    """
    overlay = overlay and plane == "axial" and layout.overlays
    lut = lut and plane == "axial" and layout.voi_lut
    key = (layout.key, plane, index, float(center), float(width), bool(invert), fmt, overlay, lut)
    cache = image_cache()
    data = cache.get(key)
    if data is None:
        values, info = plane_values(layout, plane, index)
        mask = overlay_mask(layout, index) if overlay else None
        table = voi_lut_of(layout, index) if lut else None
        data = render.render_slice(
            values, info, center, width, fmt, invert, JPEG_QUALITY, mask, table
        )
        cache.put(key, data)
    return data


def voi_lut_of(layout: Layout, index: int) -> render.VoiLut | None:
    """Return the VOI LUT of one axial image's file, read once per file."""
    if not layout.voi_lut:
        return None
    ref = layout.slices[index]
    key = ("l", layout.key, ref.blob.code, ref.frame)
    with _lock:
        if key in _luts:
            return _luts[key]
    table = render.voi_lut(_dataset(ref.blob), ref.frame)
    with _lock:
        _luts[key] = table
        while len(_luts) > 256:
            _luts.pop(next(iter(_luts)))
    return table


def overlay_mask(layout: Layout, index: int) -> np.ndarray | None:
    """Return the overlay bits drawn over one axial image, or None when it has none."""
    if not layout.overlays:
        return None
    ref = layout.slices[index]
    key = ("o", layout.key, ref.blob.code)
    cache = pixel_cache()
    masks = cache.get(key)
    if masks is None:
        ds = _dataset(ref.blob)
        frames = int(ds.get("NumberOfFrames") or 1)
        masks = overlays.overlay_masks(ds, frames, layout.rows, layout.columns)
        if masks is None:
            masks = np.zeros((0, 0, 0), dtype=bool)
        cache.put(key, masks)
    return masks[ref.frame] if ref.frame < len(masks) else None
