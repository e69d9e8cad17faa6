"""The dental arch as a smooth curve in the axial plane, and the coordinates it defines.

Points are (col, row) pixel positions in the volume's axial images, ordered from the patient's
right to left (increasing column for the usual axial orientation, where the patient's right is
on the image's left). The curve passes through every control point (centripetal Catmull-Rom),
so dragging one point moves only the two segments on either side of it.

Along the curve, `arc_mm` is the arc length in mm from the first control point; across it,
`depth_mm` is the signed distance in mm along the normal, positive towards the cheek or lips
(buccal), negative towards the tongue (lingual). `pixel_spacing` is (row mm, column mm) as in
DICOM PixelSpacing; `spacing` is the volume's (slice, row, column) mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

# Points evaluated per curve segment before resampling by arc length.
_SUBDIVISIONS = 64
MAX_POINTS = 32
_MAX_COORD = 1e5
# Finer voxels than this are no CBCT (the finest units reach 0.075 mm): a header error, and
# every view cut at that step would cost thousands of times its usual size.
MIN_SPACING_MM = 0.05


class SpacingError(ValueError):
    """The volume's voxel spacing is too fine (or not positive) to cut dental views from."""


def check_spacing(spacing: tuple[float, ...]) -> None:
    """Raise SpacingError unless every (slice, row, column) spacing is at least MIN_SPACING_MM."""
    if not all(math.isfinite(float(v)) and abs(float(v)) >= MIN_SPACING_MM for v in spacing):
        raise SpacingError(
            f"This scan's voxel spacing is below {MIN_SPACING_MM:g} mm, which no CBCT has: "
            "its header is probably wrong, so dental views are not offered."
        )


@dataclass(frozen=True)
class ArchCurve:
    """Control points (col, row) of the arch, right to left, and the occlusal slice index."""

    points: tuple[tuple[float, float], ...]
    occlusal_index: int = 0

    def __post_init__(self) -> None:
        try:
            pts = tuple((float(c), float(r)) for c, r in self.points)
            index = int(self.occlusal_index)
        except (TypeError, ValueError) as exc:
            raise ValueError("An arch curve needs (col, row) number pairs.") from exc
        if not 2 <= len(pts) <= MAX_POINTS:
            raise ValueError(f"An arch curve needs 2 to {MAX_POINTS} control points.")
        if not all(math.isfinite(v) and abs(v) < _MAX_COORD for p in pts for v in p):
            raise ValueError("Arch curve points must be finite pixel positions.")
        if index < 0:
            raise ValueError("The occlusal slice index cannot be negative.")
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "occlusal_index", index)

    def moved(self, index: int, col: float, row: float) -> ArchCurve:
        """Return the curve with one control point dragged to (col, row)."""
        points = list(self.points)
        points[index] = (col, row)
        return ArchCurve(tuple(points), self.occlusal_index)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form: {"points": [[col, row], ...], "occlusal_index": k}."""
        return {"points": [[c, r] for c, r in self.points], "occlusal_index": self.occlusal_index}

    @classmethod
    def from_dict(cls, data: Any) -> ArchCurve:
        """Return the curve described by as_dict() output; raise ValueError on anything else."""
        if not isinstance(data, dict) or not isinstance(data.get("points"), list):
            raise ValueError("An arch curve is an object with a list of points.")
        points = data["points"]
        if not all(isinstance(p, list | tuple) and len(p) == 2 for p in points):
            raise ValueError("Each arch curve point is a [col, row] pair.")
        if any(isinstance(v, bool) or not isinstance(v, int | float) for p in points for v in p):
            raise ValueError("Arch curve points must be numbers.")
        index = data.get("occlusal_index", 0)
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError("The occlusal slice index must be an integer.")
        return cls(tuple((p[0], p[1]) for p in points), index)


class CurveSamples(NamedTuple):
    """Points along the curve, evenly spaced by arc length."""

    points: np.ndarray  # (N, 2) (col, row) in pixels
    normals: np.ndarray  # (N, 2) unit (col, row) directions in mm space, buccal
    arc_mm: np.ndarray  # (N,) arc length from the first control point


def _catmull_rom(points: np.ndarray) -> np.ndarray:
    """Return a dense polyline through the points (centripetal Catmull-Rom, alpha 0.5)."""
    if len(points) > 2:  # extend the ends along the parabola through the last three points
        head = 3 * points[0] - 3 * points[1] + points[2]
        tail = 3 * points[-1] - 3 * points[-2] + points[-3]
    else:
        head, tail = 2 * points[0] - points[1], 2 * points[-1] - points[-2]
    ext = np.vstack([head, points, tail])
    p0, p1, p2, p3 = (ext[k : k + len(points) - 1][:, None, :] for k in range(4))

    def knot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.maximum(np.linalg.norm(b - a, axis=2, keepdims=True) ** 0.5, 1e-6)

    t0 = np.zeros_like(p0[..., :1])
    t1 = t0 + knot(p0, p1)
    t2 = t1 + knot(p1, p2)
    t3 = t2 + knot(p2, p3)
    u = np.linspace(0.0, 1.0, _SUBDIVISIONS, endpoint=False)[None, :, None]
    t = t1 + u * (t2 - t1)
    a1 = ((t1 - t) * p0 + (t - t0) * p1) / (t1 - t0)
    a2 = ((t2 - t) * p1 + (t - t1) * p2) / (t2 - t1)
    a3 = ((t3 - t) * p2 + (t - t2) * p3) / (t3 - t2)
    b1 = ((t2 - t) * a1 + (t - t0) * a2) / (t2 - t0)
    b2 = ((t3 - t) * a2 + (t - t1) * a3) / (t3 - t1)
    c = ((t2 - t) * b1 + (t - t1) * b2) / (t2 - t1)
    return np.vstack([c.reshape(-1, 2), points[-1:]])


class _Table(NamedTuple):
    mm: np.ndarray  # (M, 2) dense polyline in mm (x = col * dx, y = row * dy)
    arc: np.ndarray  # (M,) cumulative arc length
    tangents: np.ndarray  # (M, 2) unit tangents in mm
    sign: float  # +1 or -1: which side of the tangent is buccal


@lru_cache(maxsize=64)
def _table(curve: ArchCurve, pixel_spacing: tuple[float, float]) -> _Table:
    dy, dx = pixel_spacing
    mm = _catmull_rom(np.array(curve.points, dtype=np.float64) * (dx, dy))
    steps = np.linalg.norm(np.diff(mm, axis=0), axis=1)
    keep = np.concatenate([[True], steps > 1e-9])  # drop repeats so arc length grows strictly
    mm, arc = mm[keep], np.concatenate([[0.0], np.cumsum(steps[steps > 1e-9])])
    if len(mm) < 2:
        raise ValueError("The arch curve has no length.")
    tangents = np.gradient(mm, axis=0)
    tangents /= np.maximum(np.linalg.norm(tangents, axis=1, keepdims=True), 1e-12)
    normals = np.stack([-tangents[:, 1], tangents[:, 0]], axis=1)
    # For the usual right-to-left arch, (t_row, -t_col) points forward, away from the
    # tongue; for any order, buccal is the side away from the chord between the ends.
    normals = -normals
    inside = (mm[0] + mm[-1]) / 2
    sign = 1.0 if float(np.sum((mm - inside) * normals)) >= 0 else -1.0
    for arr in (mm, arc, tangents):
        arr.setflags(write=False)
    return _Table(mm, arc, tangents, sign)


def _frame(table: _Table, arc_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return points (mm) and unit normals at arc lengths, extending straight past the ends."""
    arc = np.asarray(arc_mm, dtype=np.float64)
    inside = np.clip(arc, 0.0, table.arc[-1])
    pos = np.stack([np.interp(inside, table.arc, table.mm[:, k]) for k in (0, 1)], axis=-1)
    tan = np.stack([np.interp(inside, table.arc, table.tangents[:, k]) for k in (0, 1)], axis=-1)
    tan /= np.maximum(np.linalg.norm(tan, axis=-1, keepdims=True), 1e-12)
    pos = pos + (arc - inside)[..., None] * tan
    normals = table.sign * np.stack([tan[..., 1], -tan[..., 0]], axis=-1)
    return pos, normals


def curve_length(curve: ArchCurve, pixel_spacing: tuple[float, float] = (1.0, 1.0)) -> float:
    """Return the curve's length in mm (pixels when pixel_spacing is (1, 1))."""
    return float(_table(curve, _spacing2(pixel_spacing)).arc[-1])


def sample_curve(
    curve: ArchCurve, step: float = 1.0, pixel_spacing: tuple[float, float] = (1.0, 1.0)
) -> CurveSamples:
    """Return points every `step` mm of arc (pixels when pixel_spacing is (1, 1)), first to last.

    Sample k lies at arc length k * step; normals are unit vectors in mm space, buccal.
    """
    if not step > 0:
        raise ValueError("The sampling step must be positive.")
    spacing = _spacing2(pixel_spacing)
    table = _table(curve, spacing)
    arc = np.arange(int(table.arc[-1] / step + 1e-9) + 1, dtype=np.float64) * step
    pos, normals = _frame(table, arc)
    return CurveSamples(pos / (spacing[1], spacing[0]), normals, arc)


def curve_point(
    curve: ArchCurve,
    arc_mm: float | np.ndarray,
    depth_mm: float | np.ndarray = 0.0,
    pixel_spacing: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Return (col, row) pixel positions at arc lengths and depths, shape (..., 2)."""
    spacing = _spacing2(pixel_spacing)
    pos, normals = _frame(_table(curve, spacing), np.asarray(arc_mm, dtype=np.float64))
    pos = pos + np.asarray(depth_mm, dtype=np.float64)[..., None] * normals
    return pos / (spacing[1], spacing[0])


def locate(
    curve: ArchCurve,
    col: float | np.ndarray,
    row: float | np.ndarray,
    pixel_spacing: tuple[float, float] = (1.0, 1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Return (arc_mm, depth_mm) of the nearest curve point to pixel positions (col, row).

    Beyond the ends, the curve continues straight along its end tangents, so arc_mm may be
    negative or exceed the curve's length (curve_point maps those back).
    """
    spacing = _spacing2(pixel_spacing)
    table = _table(curve, spacing)
    col, row = np.broadcast_arrays(np.asarray(col, float), np.asarray(row, float))
    query = np.stack([col.ravel() * spacing[1], row.ravel() * spacing[0]], axis=1)
    seg_a, seg_b = table.mm[:-1], table.mm[1:]
    seg = seg_b - seg_a
    seg_len2 = np.maximum(np.sum(seg * seg, axis=1), 1e-18)
    arcs = np.empty(len(query))
    for start in range(0, len(query), 256):  # bounded memory for many points
        q = query[start : start + 256, None, :]
        f = np.clip(np.sum((q - seg_a) * seg, axis=2) / seg_len2, 0.0, 1.0)
        d2 = np.sum((seg_a + f[..., None] * seg - q) ** 2, axis=2)
        best = np.argmin(d2, axis=1)
        lengths = table.arc[1:] - table.arc[:-1]
        arcs[start : start + 256] = table.arc[best] + f[np.arange(len(best)), best] * lengths[best]
    # Past either end the curve goes on straight (as in curve_point): project onto that line.
    before = np.sum((query - table.mm[0]) * table.tangents[0], axis=1)
    after = np.sum((query - table.mm[-1]) * table.tangents[-1], axis=1)
    arcs = np.where((arcs <= 0) & (before < 0), before, arcs)
    arcs = np.where((arcs >= table.arc[-1]) & (after > 0), table.arc[-1] + after, arcs)
    foot, normals = _frame(table, arcs)
    depth = np.sum((query - foot) * normals, axis=1)
    return arcs.reshape(col.shape), depth.reshape(col.shape)


def voxel_at(
    curve: ArchCurve,
    spacing: tuple[float, float, float],
    arc_mm: float | np.ndarray,
    slice_index: float | np.ndarray,
    depth_mm: float | np.ndarray = 0.0,
) -> np.ndarray:
    """Return (z, row, col) voxel positions of arch coordinates, shape (..., 3).

    A point on the panoramic is (arc_mm = column * mm_per_col, slice from Reformat.slice_of).
    """
    col_row = curve_point(curve, arc_mm, depth_mm, (spacing[1], spacing[2]))
    z = np.broadcast_to(np.asarray(slice_index, dtype=np.float64), col_row.shape[:-1])
    return np.stack([z, col_row[..., 1], col_row[..., 0]], axis=-1)


def arch_position(
    curve: ArchCurve, spacing: tuple[float, float, float], voxel: np.ndarray
) -> np.ndarray:
    """Return (arc_mm, depth_mm, slice index) of (z, row, col) voxel positions, shape (..., 3)."""
    voxel = np.asarray(voxel, dtype=np.float64)
    arc, depth = locate(curve, voxel[..., 2], voxel[..., 1], (spacing[1], spacing[2]))
    return np.stack([arc, depth, voxel[..., 0]], axis=-1)


def _spacing2(pixel_spacing: tuple[float, float]) -> tuple[float, float]:
    dy, dx = (float(v) for v in pixel_spacing)
    if not (dy > 0 and dx > 0):
        raise ValueError("Pixel spacing must be positive.")
    return dy, dx
