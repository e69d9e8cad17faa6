"""Dental view figures for `manage.py benchmark`: arch detection, panoramic, cross-sections.

Measured in-process on the benchmark CBCT's decoded volume, as viewer.arches cuts it for the
views; "warm" means the volume is already in memory, never that the image was cached.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from viewer import arches, dental, layouts, mpr

REPEATS = 9


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _dragged(curve: dental.ArchCurve, k: int) -> dental.ArchCurve:
    """Return the curve with one control point moved a little, as a dentist's drag does."""
    index = k % len(curve.points)
    col, row = curve.points[index]
    return curve.moved(index, col + (k % 3) - 1, row + 1)


def run(ctx: Any) -> None:
    """Print arch detection, panoramic and cross-section times on the benchmark volume."""
    series = ctx.study.series.order_by("pk").first()
    layout = layouts.layout_for(series)
    dv = arches.dental_volume(layout)  # decoded or read once, outside the timings
    shape = "x".join(str(v) for v in dv.volume.shape)
    ctx.note(f"dental: volume {shape}, spacing {dv.spacing} mm")

    started = time.perf_counter()
    occlusal = dental.occlusal_slice(dv.volume, dv.spacing, dv.rescale)
    ctx.figure("dental occlusal plane search", _ms(started), "ms")
    times = []
    for _ in range(3):
        started = time.perf_counter()
        curve = dental.detect_arch(dv.volume, dv.spacing, dv.rescale)
        times.append(_ms(started))
    ctx.figure("dental arch detection (occlusal plane + arch)", statistics.median(times), "ms")
    if curve.occlusal_index != occlusal:
        raise RuntimeError("dental benchmark: arch and occlusal plane disagree")

    for mode in ("mean", "max"):
        times = []
        for k in range(REPEATS):
            started = time.perf_counter()
            dental.panoramic(
                dv.volume, dv.spacing, _dragged(curve, k), 10.0, mode, rescale=dv.rescale,
                head_last=dv.head_last,
            )  # fmt: skip
            times.append(_ms(started))
        ctx.figure(f"dental panoramic warm, 10 mm {mode} slab p50", statistics.median(times), "ms")
        ctx.figure(f"dental panoramic warm, 10 mm {mode} slab max", max(times), "ms")

    length = dental.curve.curve_length(curve, dv.spacing[1:])
    times = []
    for at in np.linspace(5.0, length - 5.0, 4 * REPEATS):
        started = time.perf_counter()
        arches.cross_sections_of(layout, curve, [float(at)])
        times.append(_ms(started))
    ctx.figure("dental cross-section 30 x 1 mm p50", statistics.median(times), "ms")
    ctx.figure("dental cross-section 30 x 1 mm p95", sorted(times)[int(0.95 * len(times))], "ms")
    positions = list(np.arange(0.0, length, 1.0))
    started = time.perf_counter()
    arches.cross_sections_of(layout, curve, positions)
    ctx.figure(
        f"dental row of {len(positions)} cross-sections 1 mm apart, per section",
        _ms(started) / len(positions),
        "ms",
    )
    mpr.forget(series)
