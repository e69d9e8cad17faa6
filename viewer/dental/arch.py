"""Find the occlusal plane and the dental arch in a CBCT volume, from the teeth alone.

Teeth are the densest thing in a dental scan: enamel above about 2500 HU, dentin above about
1800 HU, while bone stays mostly below. The occlusal plane is where the enamel of the upper
and lower crowns meets; the arch is the centre line of the teeth seen from above, found by
sweeping rays from a point between the last molars and fitted with a few control points.

Both assume the usual axial orientation: the patient's front towards the top of the image
(low rows), the patient's right on the image's left.
"""

from __future__ import annotations

import numpy as np

from viewer.dental.curve import (
    ArchCurve,
    SpacingError,
    check_spacing,
    curve_length,
    curve_point,
)

ENAMEL_HU = 2500.0
TOOTH_HU = 1800.0
# Enamel area (mm^2) one axial slice must show to count as a dental scan.
MIN_ENAMEL_MM2 = 15.0
SLAB_MM = 6.0  # half height of the occlusal slab the arch is traced on
CONTROL_POINTS = 8
_BIN_DEGREES = 3.0
# What makes dense metal a set of teeth: the crowns of both jaws (with a bite block between)
# span at most this height, and they lie along an open U of an arch's length, mostly covered.
MAX_CROWNS_MM = 40.0
ARCH_MM = (60.0, 200.0)
MIN_COVERAGE = 0.5  # of the whole arch
MIN_HALF_COVERAGE = 0.25  # of each side: a gap of missing teeth is fine, one-sided metal is not
# A curve whose ends are closer than this fraction of its length goes round something.
MIN_END_GAP = 0.2


def _above(arr: np.ndarray, hu: float, rescale: tuple[float, float]) -> np.ndarray:
    """Return where stored values are denser than `hu` (a negative slope flips the test)."""
    slope, intercept = rescale
    if not slope or not np.isfinite(slope):
        raise ValueError("The rescale slope must be a non-zero number.")
    t = (hu - intercept) / slope
    return arr > t if slope > 0 else arr < t


def enamel_profile(
    volume: np.ndarray, spacing: tuple[float, float, float], rescale: tuple[float, float]
) -> np.ndarray:
    """Return the enamel area in mm^2 of every axial slice (every other pixel counted)."""
    counts = np.empty(volume.shape[0])
    for z in range(volume.shape[0]):  # slice by slice: no volume-sized temporary
        counts[z] = np.count_nonzero(_above(volume[z, ::2, ::2], ENAMEL_HU, rescale))
    return counts * 4 * spacing[1] * spacing[2]


def _smooth(values: np.ndarray, half: int) -> np.ndarray:
    """Return the moving average over 2 * half + 1 samples, ends repeated, same length."""
    half = max(0, min(int(half), len(values)))
    padded = np.pad(values.astype(np.float64), half, mode="edge")
    sums = np.concatenate([[0.0], np.cumsum(padded)])
    return (sums[2 * half + 1 :] - sums[: -2 * half - 1]) / (2 * half + 1)


def _plane(smooth: np.ndarray, dz: float) -> tuple[int, int, int]:
    """Return (plane, first, last) slice of the crowns in a smoothed enamel profile."""
    peak = int(np.argmax(smooth))
    # The crowns of both jaws: slices with enamel, bridging a bite-block gap of up to 6 mm.
    crowns = smooth >= 0.15 * smooth[peak]
    gap = max(1, int(round(6.0 / dz)))
    start = stop = peak
    while start > 0 and crowns[max(0, start - gap) : start].any():
        start -= 1
    while stop < len(smooth) - 1 and crowns[stop + 1 : stop + 1 + gap].any():
        stop += 1
    z = np.arange(start, stop + 1)
    weights = smooth[start : stop + 1]
    centre = int(round(float(np.sum(z * weights) / np.sum(weights))))
    reach = max(1, int(round(4.0 / dz)))
    a, b = max(start, centre - reach), min(stop, centre + reach) + 1
    dip = a + int(np.argmin(smooth[a:b]))
    left, right = smooth[start:dip], smooth[dip + 1 : stop + 1]
    if not (left.size and right.size) or smooth[dip] >= 0.8 * min(left.max(), right.max()):
        return centre, start, stop  # one merged hump: its centre of mass
    floor = smooth[dip] + 0.02 * smooth[peak]
    low, high = dip, dip
    while low > a and smooth[low - 1] <= floor:
        low -= 1
    while high < b - 1 and smooth[high + 1] <= floor:
        high += 1
    return (low + high + 1) // 2, start, stop


def occlusal_slice(
    volume: np.ndarray,
    spacing: tuple[float, float, float],
    rescale: tuple[float, float] = (1.0, 0.0),
    mirror: tuple[bool, bool] = (False, False),
) -> int | None:
    """Return the slice index of the occlusal plane, or None when the volume shows no teeth.

    The enamel profile along z has one hump per jaw (the crowns), apart when a bite block
    holds the teeth open; the plane is the middle of the dip between them, or the centre of
    mass of the crowns when they merge into one hump. Dense metal alone (a hip stem, a rod)
    is not teeth: the crowns must be short and trace an open arch (see detect_arch).
    """
    try:
        check_spacing(spacing)
    except SpacingError:
        return None
    area = enamel_profile(volume, spacing, rescale)
    if not len(area) or area.max() < MIN_ENAMEL_MM2:
        return None
    dz = abs(float(spacing[0]))
    smooth = _smooth(area, int(round(0.5 / dz)))
    plane, start, stop = _plane(smooth, dz)
    if (stop - start + 1) * dz > MAX_CROWNS_MM:
        return None
    plane = min(max(plane, 0), volume.shape[0] - 1)
    try:
        curve = detect_arch(volume, spacing, rescale, plane, mirror=mirror)
    except ValueError:
        return None
    whole, worst_half = enamel_coverage(volume, spacing, rescale, curve)
    return plane if whole >= MIN_COVERAGE and worst_half >= MIN_HALF_COVERAGE else None


def enamel_coverage(
    volume: np.ndarray,
    spacing: tuple[float, float, float],
    rescale: tuple[float, float],
    curve: ArchCurve,
) -> tuple[float, float]:
    """Return the share of the curve (every mm) running over enamel: whole, and worse half."""
    half = max(1, int(round(SLAB_MM / abs(float(spacing[0])))))
    z0 = max(0, curve.occlusal_index - half)
    z1 = min(volume.shape[0], curve.occlusal_index + half + 1)
    enamel = np.zeros(volume.shape[1:], dtype=bool)
    for z in range(z0, z1):
        enamel |= _above(volume[z], ENAMEL_HU, rescale)
    pixel = (float(spacing[1]), float(spacing[2]))
    arcs = np.arange(0.0, curve_length(curve, pixel), 1.0)
    depths = np.linspace(-3.0, 3.0, 7)
    pts = curve_point(curve, arcs[:, None], depths[None, :], pixel)
    cols = np.clip(np.rint(pts[..., 0]).astype(np.int64), 0, volume.shape[2] - 1)
    rows = np.clip(np.rint(pts[..., 1]).astype(np.int64), 0, volume.shape[1] - 1)
    covered = enamel[rows, cols].any(axis=1)
    if len(covered) < 2:
        return 0.0, 0.0
    middle = len(covered) // 2
    return float(covered.mean()), float(min(covered[:middle].mean(), covered[middle:].mean()))


def tooth_map(
    volume: np.ndarray,
    spacing: tuple[float, float, float],
    occlusal_index: int,
    rescale: tuple[float, float] = (1.0, 0.0),
) -> np.ndarray:
    """Return, per axial pixel, the fraction of the occlusal slab's slices that show tooth."""
    half = max(1, int(round(SLAB_MM / abs(float(spacing[0])))))
    z0, z1 = max(0, occlusal_index - half), min(volume.shape[0], occlusal_index + half + 1)
    if z1 <= z0:
        raise ValueError("The occlusal slice lies outside the volume.")
    counts = np.zeros(volume.shape[1:], dtype=np.int32)
    for z in range(z0, z1):
        counts += _above(volume[z], TOOTH_HU, rescale)
    return counts / float(z1 - z0)


def detect_arch(
    volume: np.ndarray,
    spacing: tuple[float, float, float],
    rescale: tuple[float, float] = (1.0, 0.0),
    occlusal_index: int | None = None,
    control_points: int = CONTROL_POINTS,
    mirror: tuple[bool, bool] = (False, False),
) -> ArchCurve:
    """Return the arch through the centre of the teeth, from the patient's right to left.

    `mirror` = (rows, columns) tells which image axes run opposite to the usual orientation
    (front at the top, patient's right on the left), e.g. (False, True) for a feet-first scan.
    Raise ValueError when the volume shows no teeth, or they trace no open arch of 60 to
    200 mm (metal in a hip or a ring of bone is not an arch).
    """
    check_spacing(spacing)
    if occlusal_index is None:
        occlusal_index = occlusal_slice(volume, spacing, rescale, mirror)
    if occlusal_index is None:
        raise ValueError("No teeth were found in this volume.")
    dy, dx = float(spacing[1]), float(spacing[2])
    weight = tooth_map(volume, spacing, occlusal_index, rescale)
    weight = weight[:: -1 if mirror[0] else 1, :: -1 if mirror[1] else 1]
    rows, cols = np.nonzero(weight >= 0.25)
    if len(rows) < 20:
        raise ValueError("No dental arch was found in this volume.")
    w = weight[rows, cols]
    x, y = cols * dx, rows * dy
    # The rays start between the last molars: centred left to right, at the back of the teeth.
    cx = float(np.sum(w * x) / np.sum(w))
    cy = float(np.percentile(y, 98))
    angle = np.degrees(np.arctan2(x - cx, cy - y))  # 0 = forward, negative = patient right
    radius = np.hypot(x - cx, y - cy)
    bins = np.floor((angle + 180.0) / _BIN_DEGREES).astype(np.int64)
    total = np.bincount(bins, weights=w)
    keep = np.flatnonzero(total >= max(2.0, 0.05 * np.median(total[total > 0])))
    mean_r = np.bincount(bins, weights=w * radius)[keep] / total[keep]
    theta = np.radians((keep + 0.5) * _BIN_DEGREES - 180.0)
    if len(keep) > 4:
        mean_r = np.convolve(np.pad(mean_r, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    px = cx + mean_r * np.sin(theta)
    py = cy - mean_r * np.cos(theta)
    steps = np.hypot(np.diff(px), np.diff(py))
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    if arc[-1] <= 0:
        raise ValueError("No dental arch was found in this volume.")
    if not ARCH_MM[0] <= arc[-1] <= ARCH_MM[1]:
        raise ValueError("The dense structures found do not trace a dental arch.")
    if np.hypot(px[-1] - px[0], py[-1] - py[0]) < MIN_END_GAP * arc[-1]:
        raise ValueError("The dense structures found go round in a ring, not along an arch.")
    at = np.linspace(0.0, arc[-1], max(2, int(control_points)))
    c, r = np.interp(at, arc, px) / dx, np.interp(at, arc, py) / dy
    if mirror[1]:
        c = volume.shape[2] - 1 - c
    if mirror[0]:
        r = volume.shape[1] - 1 - r
    return ArchCurve(tuple(zip(c.tolist(), r.tolist(), strict=True)), int(occlusal_index))
