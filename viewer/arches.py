"""The dental views of one series: its voxels as viewer.dental wants them, its detected arch.

viewer.dental is pure numpy; this module feeds it the cached decoded volume of a layout
(viewer.mpr.volume) with the layout's spacing, units and slice direction. Callers check
access first, as for any other image of the series.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import NamedTuple

import numpy as np

from viewer import dental, mpr, render
from viewer.dental import ArchCurve, Reformat
from viewer.layouts import Layout

_arches: OrderedDict[Hashable, ArchCurve | None] = OrderedDict()
_lock = threading.Lock()
_MAX_ARCHES = 64


class DentalVolume(NamedTuple):
    """What viewer.dental needs to cut one series' volume."""

    volume: np.ndarray  # (z, y, x) as viewer.mpr.volume returns it
    spacing: tuple[float, float, float]  # (slice, row, column) mm
    rescale: tuple[float, float]  # (slope, intercept) to modality units
    head_last: bool  # slice index grows towards the head


def dental_volume(layout: Layout) -> DentalVolume:
    """Return the decoded volume and its geometry; raise as viewer.mpr.volume does."""
    if layout.kind != "volume":
        raise render.DecodeError("Dental views need a CBCT volume.")
    return DentalVolume(
        mpr.volume(layout), layout.voxel_spacing(), layout.volume_rescale(), layout.head_last
    )


def detected_arch(layout: Layout) -> ArchCurve | None:
    """Return the arch found on the series' teeth (once per process), or None without teeth."""
    with _lock:
        if layout.key in _arches:
            _arches.move_to_end(layout.key)
            return _arches[layout.key]
    dv = dental_volume(layout)
    try:
        curve: ArchCurve | None = dental.detect_arch(
            dv.volume, dv.spacing, dv.rescale, occlusal_index=layout.opening_slice,
            mirror=layout.axial_mirror(),
        )  # fmt: skip
    except ValueError:
        curve = None
    with _lock:
        _arches[layout.key] = curve
        while len(_arches) > _MAX_ARCHES:
            _arches.popitem(last=False)
    return curve


def forget_arches() -> None:
    """Drop every detected arch, e.g. for cold timings."""
    with _lock:
        _arches.clear()


def panoramic_of(
    layout: Layout, curve: ArchCurve, thickness_mm: float = 10.0, mode: str = "mean"
) -> Reformat:
    """Return the series' panoramic along the curve (see viewer.dental.panoramic)."""
    dv = dental_volume(layout)
    return dental.panoramic(
        dv.volume, dv.spacing, curve, thickness_mm, mode, rescale=dv.rescale,
        head_last=dv.head_last,
    )  # fmt: skip


def cross_sections_of(
    layout: Layout,
    curve: ArchCurve,
    positions_mm: list[float],
    width_mm: float = 30.0,
    thickness_mm: float = 1.0,
) -> list[Reformat]:
    """Return the series' cross-sections at arc positions (see viewer.dental.cross_sections)."""
    dv = dental_volume(layout)
    return dental.cross_sections(
        dv.volume, dv.spacing, curve, positions_mm, width_mm, thickness_mm,
        rescale=dv.rescale, head_last=dv.head_last,
    )  # fmt: skip
