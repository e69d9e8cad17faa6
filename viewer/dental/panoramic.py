"""Panoramic and cross-sectional images cut from a CBCT volume along an arch curve.

Both images stand upright: their rows are the volume's slices, superior at the top, and each
column is a vertical line through the volume at one point of the axial plane, averaged (or
maximised) over a slab. So a column is a weighted sum of a few voxel columns: the sampling
plan lists them once, one gather reads every slice, and one reduction sums per column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from viewer.dental.curve import (
    ArchCurve,
    _frame,
    _spacing2,
    _table,
    check_spacing,
    curve_length,
)

MODES = ("mean", "max")
AIR_HU = -1000.0
# Slices gathered at a time: keeps the working set in cache and the temporary arrays small.
_CHUNK = 32
# The real work of one image, whatever its size in mm: sample points (output columns x slab
# samples, each up to 4 voxel columns in the plan) and those points times the slices read.
# A plan costs about 360 bytes a point. A 150 mm panoramic with a 30 mm slab has 200
# thousand points at 0.1 mm; at 0.3 mm it has 50 thousand, read on 450 slices: 23 million.
MAX_POINTS = 300_000
MAX_READS = 80_000_000
# Samples across a slab at most: a mean over more changes nothing visible on fine scans.
MAX_SLAB_TAPS = 128


class TooLarge(ValueError):
    """The requested image would sample more of the volume than one request may."""


def check_work(columns: int, taps: int, slices: int) -> None:
    """Raise TooLarge when an image of columns x taps sample points over slices costs too much."""
    points = columns * taps
    if points > MAX_POINTS or points * slices > MAX_READS:
        raise TooLarge("This view would be too large; choose a thinner slab or a shorter curve.")


def panoramic_size(length_mm: float, thickness_mm: float, step: float) -> tuple[int, int]:
    """Return (columns, slab samples) of a panoramic sampled every `step` mm."""
    return int(length_mm / step + 1e-9) + 1, len(_taps(thickness_mm, step))


def section_size(width_mm: float, thickness_mm: float, step: float) -> tuple[int, int]:
    """Return (columns, slab samples) of one cross-section sampled every `step` mm."""
    return int(round(width_mm / step)) + 1, len(_taps(thickness_mm, step))


@dataclass(frozen=True, eq=False)
class Reformat:
    """An upright reformatted image and how its pixels map back to the volume.

    Row r shows slice `top_slice + r * slice_step` (superior at the top); column c lies at
    `col_origin_mm + c * mm_per_col` (arc length for a panoramic, depth for a cross-section,
    lingual to buccal, 0 on the curve). `at_mm` is a cross-section's arc position.
    """

    pixels: np.ndarray  # (rows, cols) float32 in modality units
    mm_per_row: float
    mm_per_col: float
    top_slice: int
    slice_step: int
    col_origin_mm: float = 0.0
    at_mm: float | None = None

    def slice_of(self, row: float) -> float:
        """Return the (fractional) slice index shown on a row."""
        return self.top_slice + row * self.slice_step

    def row_of(self, slice_index: float) -> float:
        """Return the (fractional) row that shows a slice."""
        return (slice_index - self.top_slice) * self.slice_step

    def mm_of_col(self, col: float) -> float:
        """Return the arc length (panoramic) or depth (cross-section) in mm of a column."""
        return self.col_origin_mm + col * self.mm_per_col

    def col_of_mm(self, mm: float) -> float:
        """Return the (fractional) column at an arc length or depth in mm."""
        return (mm - self.col_origin_mm) / self.mm_per_col


class _Plan(NamedTuple):
    voxels: np.ndarray  # (K,) flat y * X + x voxel columns, grouped by output column
    weights: np.ndarray  # (K,) float32
    starts: np.ndarray  # first entry of each output column that has any
    filled: np.ndarray  # output columns that have entries
    outside: np.ndarray  # (n,) weight of each output column falling outside the volume


def _plan(points: np.ndarray, shape: tuple[int, int], bilinear: bool) -> _Plan:
    """Plan output columns, each the mean of its taps; points is (n, taps, 2) of (col, row)."""
    n, taps = points.shape[:2]
    rows, cols = shape
    col, row = points[..., 0].ravel(), points[..., 1].ravel()
    out = np.repeat(np.arange(n), taps)
    if bilinear:
        c0, r0 = np.floor(col), np.floor(row)
        fc, fr = col - c0, row - r0
        c0, r0 = c0.astype(np.int64), r0.astype(np.int64)
        cs = np.concatenate([c0, c0 + 1, c0, c0 + 1])
        rs = np.concatenate([r0, r0, r0 + 1, r0 + 1])
        w = np.concatenate([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc])
        out = np.tile(out, 4)
    else:
        cs, rs = np.rint(col).astype(np.int64), np.rint(row).astype(np.int64)
        w = np.ones(len(cs))
    w = w / taps
    inside = (cs >= 0) & (cs < cols) & (rs >= 0) & (rs < rows) & (w > 0)
    outside = np.bincount(out[~inside], weights=w[~inside], minlength=n)
    key = out[inside] * (rows * cols) + rs[inside] * cols + cs[inside]
    keys, inverse = np.unique(key, return_inverse=True)
    weights = np.bincount(inverse, weights=w[inside]).astype(np.float32)
    owner = keys // (rows * cols)
    filled, starts = np.unique(owner, return_index=True)
    return _Plan(keys % (rows * cols), weights, starts, filled, outside)


def _apply(
    volume: np.ndarray,
    plan: _Plan,
    n: int,
    z_range: tuple[int, int],
    mode: str,
    fill: float,
) -> np.ndarray:
    """Return (slices, n) stored values of the planned columns for slices z_range."""
    z0, z1 = z_range
    flat = volume.reshape(volume.shape[0], -1)
    out = np.full((z1 - z0, n), fill, dtype=np.float32)
    if not len(plan.voxels):
        return out
    for start in range(z0, z1, _CHUNK):
        stop = min(start + _CHUNK, z1)
        gathered = np.take(flat[start:stop], plan.voxels, axis=1)
        if mode == "max":
            part = np.maximum.reduceat(gathered, plan.starts, axis=1).astype(np.float32)
        else:
            part = np.add.reduceat(gathered * plan.weights, plan.starts, axis=1, dtype=np.float32)
        out[start - z0 : stop - z0, plan.filled] = part
    if mode == "mean":
        out[:, plan.filled] += (plan.outside[plan.filled] * fill).astype(np.float32)
    return out


def _finish(
    values: np.ndarray,
    rescale: tuple[float, float],
    head_last: bool,
    z_range: tuple[int, int],
    spacing: tuple[float, float, float],
    mm_per_col: float,
    col_origin_mm: float,
    at_mm: float | None = None,
) -> Reformat:
    slope, intercept = rescale
    if (slope, intercept) != (1.0, 0.0):
        values *= np.float32(slope)
        values += np.float32(intercept)
    z0, z1 = z_range
    if head_last:  # the last slice is the most superior: show it first
        values, top, step = values[::-1], z1 - 1, -1
    else:
        top, step = z0, 1
    return Reformat(
        np.ascontiguousarray(values),
        abs(float(spacing[0])),
        float(mm_per_col),
        top,
        step,
        float(col_origin_mm),
        at_mm,
    )


def _z_range(volume: np.ndarray, z_range: tuple[int, int] | None) -> tuple[int, int]:
    if z_range is None:
        return 0, volume.shape[0]
    z0, z1 = max(0, int(z_range[0])), min(volume.shape[0], int(z_range[1]))
    if z1 <= z0:
        raise ValueError("The slice range is empty.")
    return z0, z1


def _fill(fill_hu: float, rescale: tuple[float, float]) -> float:
    slope, intercept = rescale
    return (fill_hu - intercept) / slope if slope else fill_hu


def _taps(length_mm: float, step: float) -> np.ndarray:
    """Return offsets spread evenly over a slab of length_mm centred on 0 (one when thin)."""
    count = max(1, int(round(length_mm / step)) + 1) if length_mm > 0 else 1
    count = min(count, MAX_SLAB_TAPS)
    return np.linspace(-length_mm / 2, length_mm / 2, count) if count > 1 else np.zeros(1)


def panoramic(
    volume: np.ndarray,
    spacing: tuple[float, float, float],
    curve: ArchCurve,
    thickness_mm: float = 10.0,
    mode: str = "mean",
    *,
    rescale: tuple[float, float] = (1.0, 0.0),
    head_last: bool = True,
    mm_per_col: float | None = None,
    z_range: tuple[int, int] | None = None,
    fill_hu: float = AIR_HU,
) -> Reformat:
    """Return the panoramic along the curve: column j at arc length j * mm_per_col.

    Each column averages (mode="mean") or takes the maximum (mode="max") across a slab of
    thickness_mm centred on the curve, along its normal. Columns run from the first control
    point (the patient's right) to the last; rows are slices, superior first. mm_per_col
    defaults to the finer in-plane pixel spacing; z_range limits the slices (start, stop).
    """
    if mode not in MODES:
        raise ValueError("mode must be mean or max.")
    check_spacing(spacing)
    pixel = _spacing2(spacing[1:])
    step = float(mm_per_col or min(pixel))
    zr = _z_range(volume, z_range)
    check_work(*panoramic_size(curve_length(curve, pixel), thickness_mm, step), zr[1] - zr[0])
    table = _table(curve, pixel)
    arcs = np.arange(int(curve_length(curve, pixel) / step + 1e-9) + 1) * step
    pos, normals = _frame(table, arcs)
    depths = _taps(thickness_mm, min(pixel))
    points = pos[:, None, :] + depths[None, :, None] * normals[:, None, :]
    points = points / (pixel[1], pixel[0])  # mm to (col, row) pixels
    if mode == "max" and len(depths) == 1:
        mode = "mean"  # the maximum of one sample is the sample, interpolated
    plan = _plan(points, volume.shape[1:], bilinear=mode == "mean")
    fill = _fill(fill_hu, rescale)
    values = _apply(volume, plan, len(arcs), zr, mode, fill)
    return _finish(values, rescale, head_last, zr, spacing, step, 0.0)


def _section_points(
    curve: ArchCurve,
    pixel: tuple[float, float],
    at_mm: float,
    width_mm: float,
    thickness_mm: float,
    step: float,
) -> np.ndarray:
    """Return (cols, taps, 2) pixel points of the flat plane normal to the curve at at_mm."""
    pos, normal = _frame(_table(curve, pixel), np.array([float(at_mm)]))
    pos, normal = pos[0], normal[0]
    tangent = np.array([-normal[1], normal[0]])
    count = int(round(width_mm / step)) + 1
    depths = -width_mm / 2 + np.arange(count) * step
    along = _taps(thickness_mm, step)
    points = pos + depths[:, None, None] * normal + along[None, :, None] * tangent
    return points / (pixel[1], pixel[0])


def cross_sections(
    volume: np.ndarray,
    spacing: tuple[float, float, float],
    curve: ArchCurve,
    positions_mm: list[float] | np.ndarray,
    width_mm: float = 30.0,
    thickness_mm: float = 1.0,
    *,
    rescale: tuple[float, float] = (1.0, 0.0),
    head_last: bool = True,
    mm_per_col: float | None = None,
    z_range: tuple[int, int] | None = None,
    fill_hu: float = AIR_HU,
) -> list[Reformat]:
    """Return the cross-sections at several arc positions, read from the volume in one pass.

    Each is the flat plane perpendicular to the curve at its position: columns from lingual
    (depth -width/2) to buccal (+width/2), averaged over thickness_mm along the curve.
    """
    check_spacing(spacing)
    pixel = _spacing2(spacing[1:])
    step = float(mm_per_col or min(pixel))
    positions = [float(p) for p in np.atleast_1d(positions_mm)]
    if not positions:
        return []
    zr = _z_range(volume, z_range)
    columns, taps = section_size(width_mm, thickness_mm, step)
    check_work(columns * len(positions), taps, zr[1] - zr[0])
    parts = [_section_points(curve, pixel, p, width_mm, thickness_mm, step) for p in positions]
    plan = _plan(np.concatenate(parts), volume.shape[1:], bilinear=True)
    fill = _fill(fill_hu, rescale)
    values = _apply(volume, plan, sum(len(p) for p in parts), zr, "mean", fill)
    out, start = [], 0
    for at, part in zip(positions, parts, strict=True):
        piece = values[:, start : start + len(part)]
        start += len(part)
        out.append(_finish(piece.copy(), rescale, head_last, zr, spacing, step, -width_mm / 2, at))
    return out


def cross_section(
    volume: np.ndarray,
    spacing: tuple[float, float, float],
    curve: ArchCurve,
    at_mm: float,
    width_mm: float = 30.0,
    thickness_mm: float = 1.0,
    **options: object,
) -> Reformat:
    """Return the cross-section perpendicular to the curve at arc length at_mm.

    Options as cross_sections (rescale, head_last, mm_per_col, z_range, fill_hu).
    """
    return cross_sections(volume, spacing, curve, [at_mm], width_mm, thickness_mm, **options)[0]  # type: ignore[arg-type]
