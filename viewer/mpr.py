"""Series layouts and decoded-pixel caches: what the slice views read instead of the vault.

Decoded pixels live only in process memory (a bounded LRU), never on disk. A layout is the
series' instances sorted into slices, cached per series and instance count so a slice request
costs no query beyond the access check.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pydicom
from django.conf import settings
from pydicom.dataset import Dataset

from portal import vault
from portal.models import Instance, Series, StoredObject
from viewer import render

PLANES = render.PLANES
JPEG_QUALITY = 85
# A volume needs this many slices; fewer is a stack (e.g. two bitewings).
MIN_VOLUME_SLICES = 3
# Slices tried, spread over the series, before calling the whole series undecodable.
PROBES = 5


@dataclass(frozen=True)
class SliceRef:
    """One displayable frame: which stored object, which frame in it, how to window it."""

    blob: StoredObject
    frame: int
    info: render.RenderInfo


@dataclass
class Layout:
    """The series as the viewer sees it: ordered slices and the geometry to scale them."""

    pk: int
    key: Hashable
    kind: str  # "volume" or "stack"
    slices: tuple[SliceRef, ...]
    rows: int
    columns: int
    colour: bool
    modality: str
    pixel_spacing: tuple[float, float] | None
    slice_spacing: float | None
    orientation: list[float] | None
    presets: list[dict[str, Any]]
    window: dict[str, Any] | None
    auto_window: dict[str, Any] | None = field(default=None)
    volume_error: str = ""  # why reformats failed, so the volume is not decoded again per cut

    @property
    def uniform_info(self) -> bool:
        return len({s.info for s in self.slices}) <= 1

    def default_window(self) -> dict[str, Any]:
        """Return the file's first window, else one measured from the first decoded slice."""
        if self.window is not None:
            return self.window
        if self.auto_window is None:
            values = axial_values(self, first_decodable(self))
            self.auto_window = render.auto_window(values, self.slices[0].info)
        return self.auto_window

    def plane_count(self, plane: str) -> int:
        """Return how many images a plane has (0 when the plane does not exist)."""
        if plane == "axial":
            return len(self.slices)
        if self.kind != "volume":
            return 0
        return self.rows if plane == "coronal" else self.columns

    def plane_geometry(self, plane: str) -> dict[str, Any]:
        """Return count, image size and (row, col) spacing in mm of one plane."""
        spacing = self.pixel_spacing
        if plane == "axial":
            return {
                "count": len(self.slices),
                "rows": self.rows,
                "columns": self.columns,
                "spacing": list(spacing) if spacing else None,
            }
        slice_spacing = self.slice_spacing or (spacing[0] if spacing else 1.0)
        plane_sp = render.plane_spacing(plane, spacing or (1.0, 1.0), slice_spacing)
        return {
            "count": self.plane_count(plane),
            "rows": len(self.slices),
            "columns": self.columns if plane == "coronal" else self.rows,
            "spacing": list(plane_sp),
        }


# ---------------------------------------------------------------- caches

_pixels: render.BoundedCache | None = None
_layouts: OrderedDict[Any, tuple[Layout, float]] = OrderedDict()
_layout_lock = threading.Lock()
_build_locks: dict[Hashable, threading.Lock] = {}
_MAX_LAYOUTS = 256
LAYOUT_TTL = 30.0


def pixel_cache() -> render.BoundedCache:
    """Return the process-wide decoded-pixel cache, sized by PORTAL_VIEWER_CACHE_BYTES."""
    global _pixels
    if _pixels is None:
        size = getattr(settings, "PORTAL_VIEWER_CACHE_BYTES", 1536 * 2**20)
        _pixels = render.BoundedCache(size)
    return _pixels


def clear_caches() -> None:
    """Drop every decoded pixel and layout, e.g. for cold timings or after a shred."""
    pixel_cache().clear()
    with _layout_lock:
        _layouts.clear()


def forget(series: Series) -> None:
    """Drop one series' layout and decoded pixels, e.g. after a worker built its thumbnail."""
    with _layout_lock:
        entry = _layouts.pop(series.code, None)
    if entry is None:
        return
    layout = entry[0]
    cache = pixel_cache()
    for kind in ("v", "t"):
        cache.discard((kind, layout.key))
    for ref in layout.slices:
        cache.discard(("f", layout.key, ref.blob.code))


def _build_lock(key: Hashable) -> threading.Lock:
    with _layout_lock:
        return _build_locks.setdefault(key, threading.Lock())


def _drop_build_lock(key: Hashable) -> None:
    """Forget a build lock once its array is cached; a later miss simply makes a new one."""
    with _layout_lock:
        _build_locks.pop(key, None)


# ---------------------------------------------------------------- layouts


def cached_layout(code: Hashable) -> Layout | None:
    """Return a series' layout if one younger than LAYOUT_TTL is cached, without any query.

    Callers decide access first (portal.access); a miss means load the Series and layout_for.
    """
    with _layout_lock:
        entry = _layouts.get(code)
        if entry is None or time.monotonic() - entry[1] >= LAYOUT_TTL:
            return None
        _layouts.move_to_end(code)
        return entry[0]


def layout_for(series: Series) -> Layout:
    """Return the cached layout of a series; recount its instances every LAYOUT_TTL seconds.

    Keys are UUIDs, never pks: a reused pk must not show a deleted series' pixels.

    A slice request then costs no query here; a series still being ingested shows new
    slices within the TTL, as the layout is rebuilt once its instance count changes.
    """
    now = time.monotonic()
    with _layout_lock:
        entry = _layouts.get(series.code)
        if entry is not None:
            _layouts.move_to_end(series.code)
    if entry is not None and now - entry[1] < LAYOUT_TTL:
        return entry[0]
    count = Instance.objects.filter(series_id=series.pk).count()
    if entry is not None and entry[0].key == (series.code, count):
        layout = entry[0]
    else:
        layout = build_layout(series, (series.code, count))
    with _layout_lock:
        _layouts[series.code] = (layout, now)
        while len(_layouts) > _MAX_LAYOUTS:
            _layouts.popitem(last=False)
    return layout


def _position(inst: Instance) -> float | None:
    """Return the slice's distance along its normal (plain floats: numpy costs 0.1 ms a call)."""
    if not inst.image_position or not inst.image_orientation:
        return None
    try:
        r0, r1, r2, c0, c1, c2 = (float(v) for v in inst.image_orientation)
        p0, p1, p2 = (float(v) for v in inst.image_position)
    except (TypeError, ValueError):
        return None
    n0, n1, n2 = r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0
    return n0 * p0 + n1 * p1 + n2 * p2


def _info(inst: Instance) -> render.RenderInfo:
    return render.RenderInfo(
        float(inst.rescale_slope or 1.0),
        float(inst.rescale_intercept or 0.0),
        inst.photometric == "MONOCHROME1",
    )


# What build_layout reads; leaving out UIDs, names and dates saves a third of the row loading.
_LAYOUT_FIELDS = (
    "instance_number",
    "rows",
    "columns",
    "frames",
    "samples_per_pixel",
    "photometric",
    "rescale_slope",
    "rescale_intercept",
    "window_center",
    "window_width",
    "pixel_spacing",
    "slice_thickness",
    "image_position",
    "image_orientation",
    "blob",
)


def build_layout(series: Series, key: Hashable) -> Layout:
    """Sort the series' instances into slices and decide whether they form a volume."""
    instances = list(
        Instance.objects.filter(series=series)
        .select_related("blob")
        .order_by()  # sorted below by position; SQL ordering would cost a sort for nothing
        .only(*_LAYOUT_FIELDS)
    )
    positions = [_position(i) for i in instances]
    have_positions = instances and all(p is not None for p in positions)
    if have_positions:
        order = sorted(
            range(len(instances)),
            key=lambda i: (positions[i], instances[i].instance_number or 0, instances[i].pk),
        )
    else:
        order = sorted(
            range(len(instances)),
            key=lambda i: (instances[i].instance_number or 0, instances[i].pk),
        )
    instances = [instances[i] for i in order]
    slices = tuple(
        SliceRef(inst.blob, f, _info(inst)) for inst in instances for f in range(inst.frames or 1)
    )
    first = instances[0] if instances else None
    sizes = {(i.rows, i.columns) for i in instances}
    colour = any(
        (i.samples_per_pixel or 1) > 1 or i.photometric.startswith(("RGB", "YBR"))
        for i in instances
    )
    same_plane = len({tuple(i.image_orientation or ()) for i in instances}) == 1
    is_volume = (
        len(slices) >= MIN_VOLUME_SLICES
        and len(sizes) == 1
        and not colour
        and (
            (have_positions and same_plane and len(instances) == len(slices)) or len(instances) == 1
        )
    )
    slice_spacing = None
    if is_volume and have_positions and len(instances) > 1:
        sorted_pos = sorted(p for p in positions if p is not None)
        slice_spacing = float(np.median(np.diff(sorted_pos))) or None
    if slice_spacing is None and first is not None and first.slice_thickness:
        slice_spacing = float(first.slice_thickness)
    spacing = None
    if first is not None and first.pixel_spacing and len(first.pixel_spacing) == 2:
        spacing = (float(first.pixel_spacing[0]), float(first.pixel_spacing[1]))
    ds = Dataset()
    ds.Modality = series.modality or ""
    window = None
    if first is not None and first.window_center is not None and first.window_width:
        ds.WindowCenter = first.window_center
        ds.WindowWidth = first.window_width
        window = {"name": "File", "center": first.window_center, "width": first.window_width}
    presets = render.window_presets(ds)
    return Layout(
        pk=series.pk,
        key=key,
        kind="volume" if is_volume else "stack",
        slices=slices,
        rows=int(first.rows or 0) if first else 0,
        columns=int(first.columns or 0) if first else 0,
        colour=colour,
        modality=series.modality,
        pixel_spacing=spacing,
        slice_spacing=slice_spacing,
        orientation=[float(v) for v in first.image_orientation]
        if first is not None and first.image_orientation
        else None,
        presets=presets,
        window=window,
    )


# ---------------------------------------------------------------- decoding


def decode_blob(blob: StoredObject) -> np.ndarray:
    """Decrypt and decode one stored DICOM to its frames, in memory only."""
    data = vault.read_bytes(blob)
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - any parse failure means "cannot show"
        raise render.DecodeError("The file could not be read as DICOM.") from exc
    return render.decode_frames(ds)


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
            try:
                vol = _build_volume(layout)
            except render.DecodeError as exc:
                layout.volume_error = (
                    f"Coronal and sagittal views need every slice, and one cannot be decoded: {exc}"
                )
            else:
                cache.put(key, vol)
                for ref in layout.slices:  # the volume now holds these frames
                    cache.discard(("f", layout.key, ref.blob.code))
    _drop_build_lock(key)
    if vol is None:
        raise render.DecodeError(layout.volume_error)
    return vol


def _build_volume(layout: Layout) -> np.ndarray:
    cache = pixel_cache()
    if len({s.blob.pk for s in layout.slices}) == 1:
        frames = cache.get(("f", layout.key, layout.slices[0].blob.code))
        arr = frames if frames is not None else decode_blob(layout.slices[0].blob)
        return _as_modality(arr, [layout.slices[0].info] * len(arr), layout.uniform_info)
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


def probe_indices(layout: Layout) -> list[int]:
    """Return the middle slice, then a few spread from first to last, without repeats."""
    last = len(layout.slices) - 1
    spread = (round(k * last / (PROBES - 1)) for k in range(PROBES))
    return list(dict.fromkeys([len(layout.slices) // 2, *spread]))


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
        return sagittal_volume(layout)[index][::-1], _volume_info(layout)
    return render.reformat(volume(layout), plane, index), _volume_info(layout)


def sagittal_volume(layout: Layout) -> np.ndarray:
    """Return the volume as (x, z, y), so a sagittal cut reads contiguous memory.

    Cutting (z, y, x) at fixed x touches one cache line per voxel (about 6 ms for 450x512);
    the copy costs one slice-wise transpose (about 0.35 s) and makes each cut ~0.5 ms.
    """
    key = ("t", layout.key)
    cache = pixel_cache()
    arr = cache.get(key)
    if arr is not None:
        return arr
    vol = volume(layout)
    with _build_lock(key):
        arr = cache.get(key)
        if arr is None:
            arr = np.empty((vol.shape[2], vol.shape[0], vol.shape[1]), dtype=vol.dtype)
            for z in range(vol.shape[0]):
                arr[:, z, :] = vol[z].T
            cache.put(key, arr)
    _drop_build_lock(key)
    return arr


def render_plane(
    layout: Layout,
    plane: str,
    index: int,
    center: float,
    width: float,
    invert: bool = False,
    fmt: str = "jpeg",
) -> bytes:
    """Render one windowed image of a plane as JPEG or PNG bytes."""
    values, info = plane_values(layout, plane, index)
    return render.render_slice(values, info, center, width, fmt, invert, JPEG_QUALITY)
