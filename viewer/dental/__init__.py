"""Dental views of a CBCT volume: the arch curve, its detection, panoramic and cross-sections.

Pure numpy, no Django. Every function takes the volume exactly as viewer.mpr.volume returns
it: a (z, y, x) array of stored values (apply `rescale` to get Hounsfield-like units), slice
index growing towards the head when `head_last` is true, and `spacing` = (slice, row, column)
in mm (viewer.layouts.Layout.voxel_spacing()).
"""

from __future__ import annotations

from viewer.dental.arch import detect_arch, occlusal_slice
from viewer.dental.curve import (
    MIN_SPACING_MM,
    ArchCurve,
    CurveSamples,
    SpacingError,
    arch_position,
    check_spacing,
    curve_length,
    curve_point,
    locate,
    sample_curve,
    voxel_at,
)
from viewer.dental.panoramic import (
    Reformat,
    TooLarge,
    check_work,
    cross_section,
    cross_sections,
    panoramic,
    panoramic_size,
    section_size,
)

__all__ = [
    "MIN_SPACING_MM",
    "ArchCurve",
    "CurveSamples",
    "Reformat",
    "SpacingError",
    "TooLarge",
    "arch_position",
    "check_spacing",
    "check_work",
    "cross_section",
    "cross_sections",
    "curve_length",
    "curve_point",
    "detect_arch",
    "locate",
    "occlusal_slice",
    "panoramic",
    "panoramic_size",
    "sample_curve",
    "section_size",
    "voxel_at",
]
