"""Series layouts: a series' instances sorted into slices, with the geometry to show them.

A layout is cached per series and instance count, so a slice request costs no query beyond
the access check; a series still being ingested shows new slices within LAYOUT_TTL.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from portal.models import Instance, Series, StoredObject
from viewer import render

# A volume needs this many slices; fewer is a stack (e.g. two bitewings).
MIN_VOLUME_SLICES = 3


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
    # Why coronal and sagittal views are not offered (uneven spacing, gantry tilt).
    reformat_note: str = ""
    # True when the slice index grows towards the head, so reformats are flipped to put the
    # head at the top; False when it grows towards the feet (e.g. a normal to the feet).
    head_last: bool = True
    overlays: bool = False
    voi_lut: bool = False  # the first file carries a VOI LUT (used when it has no window)
    # A dental CBCT's occlusal plane, found when the volume is stored (see mpr.viewing_slice).
    opening_slice: int | None = None

    @property
    def uniform_info(self) -> bool:
        return len({s.info for s in self.slices}) <= 1

    def voxel_spacing(self) -> tuple[float, float, float]:
        """Return the volume's (slice, row, column) spacing in mm, 1 mm where unknown."""
        row, col = self.pixel_spacing or (1.0, 1.0)
        return abs(self.slice_spacing or row), row, col

    def volume_rescale(self) -> tuple[float, float]:
        """Return (slope, intercept) turning the volume's values into modality units.

        The volume holds stored values when every slice shares one rescale, else modality
        values already (viewer.mpr.decode_volume).
        """
        if self.slices and self.uniform_info:
            info = self.slices[0].info
            return float(info.slope), float(info.intercept)
        return 1.0, 0.0

    def plane_count(self, plane: str) -> int:
        """Return how many images a plane has (0 when the plane does not exist)."""
        if plane == "axial":
            return len(self.slices)
        if self.kind != "volume":
            return 0
        return self.rows if plane == "coronal" else self.columns

    def plane_geometry(self, plane: str) -> dict[str, Any]:
        """Return count, image size, (row, col) spacing in mm and edge letters of one plane."""
        spacing = self.pixel_spacing
        if plane == "axial":
            return {
                "count": len(self.slices),
                "rows": self.rows,
                "columns": self.columns,
                "spacing": list(spacing) if spacing else None,
                "labels": self.edge_labels(plane),
            }
        slice_spacing = self.slice_spacing or (spacing[0] if spacing else 1.0)
        plane_sp = render.plane_spacing(plane, spacing or (1.0, 1.0), slice_spacing)
        return {
            "count": self.plane_count(plane),
            "rows": len(self.slices),
            "columns": self.columns if plane == "coronal" else self.rows,
            "spacing": list(plane_sp),
            "labels": self.edge_labels(plane),
        }

    def axial_mirror(self) -> tuple[bool, bool]:
        """Return which axial image axes (rows, columns) run opposite to the usual view.

        Usual: front at the top, the patient's right on the image's left. From Image
        Orientation (Patient), a row direction towards the patient's right (feet first)
        mirrors columns; a column direction towards the front (prone) mirrors rows.
        """
        if not self.orientation or len(self.orientation) != 6:
            return False, False
        row, column = self.orientation[:3], self.orientation[3:]
        return column[1] < 0, row[0] < 0

    def edge_labels(self, plane: str) -> dict[str, str] | None:
        """Return the patient directions at the right and bottom edges of a plane's images.

        Derived from Image Orientation (Patient): "L" left, "P" posterior, "S" head, and
        their opposites, two letters for an oblique direction (e.g. "LP").
        """
        if not self.orientation or len(self.orientation) != 6:
            return None
        row, column = self.orientation[:3], self.orientation[3:]
        normal = _normal(self.orientation)
        if normal is None:
            return None
        down_stack = [-v for v in normal] if self.head_last else list(normal)
        right, bottom = {
            "axial": (row, column),
            "coronal": (row, down_stack),
            "sagittal": (column, down_stack),
        }[plane]
        return {"right": direction(right), "bottom": direction(bottom)}


_layouts: OrderedDict[Any, tuple[Layout, float]] = OrderedDict()
_layout_lock = threading.Lock()
_MAX_LAYOUTS = 256
LAYOUT_TTL = 30.0


def clear() -> None:
    """Forget every cached layout."""
    with _layout_lock:
        _layouts.clear()


def pop(code: Hashable) -> Layout | None:
    """Forget one series' layout and return it, if it was cached."""
    with _layout_lock:
        entry = _layouts.pop(code, None)
    return entry[0] if entry is not None else None


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
        layout.opening_slice = series.opening_slice  # another process may have found it
    else:
        layout = build_layout(series, (series.code, count))
    with _layout_lock:
        _layouts[series.code] = (layout, now)
        while len(_layouts) > _MAX_LAYOUTS:
            _layouts.popitem(last=False)
    return layout


def _normal(orientation: Any) -> tuple[float, float, float] | None:
    """Return the slice normal (row x column) of an Image Orientation (Patient), or None."""
    try:
        r0, r1, r2, c0, c1, c2 = (float(v) for v in orientation)
    except (TypeError, ValueError):
        return None
    return r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0


def direction(vector: Any) -> str:
    """Return the patient direction letters of a vector (LPS), strongest first, up to two."""
    letters = []
    for value, plus, minus in zip(vector, "LPS", "RAI", strict=True):
        if abs(float(value)) > 0.25:
            letters.append((abs(float(value)), plus if float(value) > 0 else minus))
    return "".join(letter for _, letter in sorted(letters, key=lambda item: -item[0])[:2])


def _vector(value: Any) -> tuple[float, float, float] | None:
    try:
        x, y, z = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return x, y, z


def _info(inst: Instance, frame: int = 0) -> render.RenderInfo:
    slope, intercept = inst.rescale_slope or 1.0, inst.rescale_intercept or 0.0
    if inst.frame_rescale and frame < len(inst.frame_rescale):
        slope, intercept = inst.frame_rescale[frame]
    # A Presentation LUT Shape decides polarity; without one, MONOCHROME1 is shown inverted.
    shape = inst.presentation_lut
    invert = shape == "INVERSE" if shape else inst.photometric == "MONOCHROME1"
    return render.RenderInfo(float(slope), float(intercept), invert)


@dataclass
class _Frame:
    inst: Instance
    index: int
    position: tuple[float, float, float] | None


def _frames(inst: Instance) -> list[_Frame]:
    count = inst.frames or 1
    per_frame = inst.frame_positions if inst.frame_positions else None
    if per_frame is not None and len(per_frame) == count:
        return [_Frame(inst, k, _vector(per_frame[k])) for k in range(count)]
    first = _vector(inst.image_position) if inst.image_position else None
    return [_Frame(inst, k, first if count == 1 else None) for k in range(count)]


def _geometry_note(
    frames: list[_Frame], normal: tuple[float, float, float], pixel: float
) -> tuple[float | None, str]:
    """Return the slice spacing from positions, or None and why the stack is no volume."""
    points = np.array([f.position for f in frames], dtype=np.float64)
    n = np.array(normal, dtype=np.float64)
    along = points @ n
    gaps = np.diff(along)
    spacing = float(np.median(gaps))
    if spacing <= 1e-6 or np.any(np.abs(gaps - spacing) > 0.05 * spacing + 1e-3):
        return None, (
            "Coronal and sagittal views are not available: the slices are unevenly spaced."
        )
    sideways = points - points[0] - np.outer(along - along[0], n)
    if float(np.max(np.linalg.norm(sideways, axis=1))) > max(0.5 * pixel, 1e-3):
        return None, (
            "Coronal and sagittal views are not available: the slices are tilted against their "
            "normal (gantry tilt)."
        )
    return spacing, ""


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
    "frame_positions",
    "frame_rescale",
    "overlays",
    "presentation_lut",
    "voi_lut",
    "blob",
)


def build_layout(series: Series, key: Hashable) -> Layout:
    """Sort the series' frames along the slice normal and decide whether they form a volume.

    Geometry comes from Image Orientation and Position (per frame for enhanced objects): the
    spacing from the positions, the order along the normal, and which end is the head.
    Unevenly spaced or tilted slices stay a stack, with the reason, rather than a distorted
    reformat.
    """
    instances = list(
        Instance.objects.filter(series=series)
        .select_related("blob")
        .order_by()  # sorted below by position; SQL ordering would cost a sort for nothing
        .only(*_LAYOUT_FIELDS)
    )
    instances.sort(key=lambda i: (i.instance_number or 0, i.pk))
    frames = [f for inst in instances for f in _frames(inst)]
    normals = {_normal(i.image_orientation) for i in instances if i.image_orientation}
    normal = normals.pop() if len(normals) == 1 else None
    have_positions = bool(frames) and normal is not None and all(f.position for f in frames)
    if have_positions:
        frames.sort(key=lambda f: sum(a * b for a, b in zip(f.position, normal, strict=True)))
    slices = tuple(SliceRef(f.inst.blob, f.index, _info(f.inst, f.index)) for f in frames)
    first = instances[0] if instances else None
    sizes = {(i.rows, i.columns) for i in instances}
    colour = any(
        (i.samples_per_pixel or 1) > 1 or i.photometric.startswith(("RGB", "YBR", "PALETTE"))
        for i in instances
    )
    spacing = None
    if first is not None and first.pixel_spacing and len(first.pixel_spacing) == 2:
        spacing = (float(first.pixel_spacing[0]), float(first.pixel_spacing[1]))
    slice_spacing, note = None, ""
    shape_ok = len(slices) >= MIN_VOLUME_SLICES and len(sizes) == 1 and not colour
    if shape_ok and have_positions:
        slice_spacing, note = _geometry_note(frames, normal, min(spacing or (1.0, 1.0)))
    is_volume = shape_ok and not note and (have_positions or len(instances) == 1)
    if slice_spacing is None and not note and first is not None and first.slice_thickness:
        slice_spacing = float(first.slice_thickness)
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
        reformat_note=note,
        overlays=any(i.overlays for i in instances),
        voi_lut=first is not None and first.voi_lut and window is None,
        opening_slice=series.opening_slice,
        # Sorted along the normal, index grows with it: towards the head when it points up.
        head_last=normal is None or not have_positions or normal[2] >= 0,
    )
