"""Query parameters of the dental views, checked and bounded before any pixel is read.

A curve travels in the query as `points=c,r;c,r;...&occlusal=k` (axial pixel positions,
patient's right first). Everything is bounded: how many points, where they may lie, how long
the curve may be, slab and section sizes; bad input raises BadParameter with a sentence a
person can read, which the views answer with 400.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from viewer.dental import ArchCurve, check_work, curve_length, panoramic_size, section_size

MAX_POINTS = 32
MIN_POINTS = 3
# A dental arch is 100 to 160 mm along; longer curves would only cost render time.
MAX_LENGTH_MM = 300.0
# The thickest slab the viewer offers.
MAX_PANORAMIC_THICKNESS_MM = 30.0
MAX_SECTION_THICKNESS_MM = 10.0
SECTION_WIDTH_MM = (5.0, 80.0)
MODES = ("mean", "max")
MAX_QUERY_CHARS = 2000
# Points are rounded to this (pixels): finer moves change nothing a person sees, and the
# rounded curve names the cached image.
POINT_DECIMALS = 1


class BadParameter(ValueError):
    """A query parameter is missing, malformed or out of bounds (answered with 400)."""


@dataclass(frozen=True)
class PanoramicParams:
    curve: ArchCurve
    length_mm: float
    thickness_mm: float
    mode: str

    def key(self) -> tuple[Any, ...]:
        # The occlusal slice does not change a panoramic's pixels, so it is not in the key.
        return ("pano", self.curve.points, self.thickness_mm, self.mode)


@dataclass(frozen=True)
class SectionParams:
    curve: ArchCurve
    length_mm: float
    at_mm: float
    width_mm: float
    thickness_mm: float

    def key(self) -> tuple[Any, ...]:
        return ("section", self.curve.points, self.at_mm, self.width_mm, self.thickness_mm)


def _number(query: Any, name: str, default: float | None, lo: float, hi: float) -> float:
    raw = query.get(name)
    if raw in (None, ""):
        if default is None:
            raise BadParameter(f"The parameter {name} is missing.")
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise BadParameter(f"The parameter {name} must be a number.") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise BadParameter(f"The parameter {name} must lie between {lo:g} and {hi:g}.")
    return value


def parse_curve(
    query: Any, shape: tuple[int, int, int], pixel_spacing: tuple[float, float]
) -> tuple[ArchCurve, float]:
    """Return the curve of `points` and `occlusal` and its length in mm.

    shape is the volume's (slices, rows, columns); points must lie on the axial image.
    """
    slices, rows, cols = shape
    raw = query.get("points") or ""
    if not raw:
        raise BadParameter("The parameter points is missing.")
    if len(raw) > MAX_QUERY_CHARS:
        raise BadParameter("The parameter points is too long.")
    pairs = raw.split(";")
    if not MIN_POINTS <= len(pairs) <= MAX_POINTS:
        raise BadParameter(f"A curve needs {MIN_POINTS} to {MAX_POINTS} points.")
    points = []
    for pair in pairs:
        parts = pair.split(",")
        if len(parts) != 2:
            raise BadParameter("Each point is a column and a row, separated by a comma.")
        try:
            col, row = float(parts[0]), float(parts[1])
        except ValueError:
            raise BadParameter("Each point is a column and a row, as numbers.") from None
        if not (math.isfinite(col) and math.isfinite(row)):
            raise BadParameter("Each point is a column and a row, as numbers.")
        if not (0 <= col <= cols - 1 and 0 <= row <= rows - 1):
            raise BadParameter("Every point of the curve must lie on the image.")
        points.append((round(col, POINT_DECIMALS), round(row, POINT_DECIMALS)))
    occlusal = _number(query, "occlusal", None, 0, slices - 1)
    if occlusal != int(occlusal):
        raise BadParameter("The parameter occlusal must be a whole slice number.")
    curve = ArchCurve(tuple(points), int(occlusal))
    try:
        length = curve_length(curve, pixel_spacing)
    except ValueError:  # every point in one place
        raise BadParameter("The curve is too short.") from None
    if length > MAX_LENGTH_MM:
        raise BadParameter(f"The curve is longer than {MAX_LENGTH_MM:g} mm.")
    if length < 1.0:
        raise BadParameter("The curve is too short.")
    return curve, length


def parse_panoramic(
    query: Any, shape: tuple[int, int, int], pixel_spacing: tuple[float, float]
) -> PanoramicParams:
    """Return the curve, slab thickness (mm) and mode (mean or max) of a panoramic request."""
    curve, length = parse_curve(query, shape, pixel_spacing)
    thickness = _number(query, "thickness", 10.0, 0.0, MAX_PANORAMIC_THICKNESS_MM)
    mode = query.get("mode") or "mean"
    if mode not in MODES:
        raise BadParameter("The parameter mode must be mean or max.")
    _check_work(panoramic_size(length, thickness, min(pixel_spacing)), shape[0])
    return PanoramicParams(curve, length, round(thickness, 2), mode)


def parse_section(
    query: Any, shape: tuple[int, int, int], pixel_spacing: tuple[float, float]
) -> SectionParams:
    """Return the curve, arc position, width and thickness (mm) of a cross-section request."""
    curve, length = parse_curve(query, shape, pixel_spacing)
    at = _number(query, "at", None, 0.0, length)
    width = _number(query, "width", 30.0, *SECTION_WIDTH_MM)
    thickness = _number(query, "thickness", 1.0, 0.0, MAX_SECTION_THICKNESS_MM)
    _check_work(section_size(width, thickness, min(pixel_spacing)), shape[0])
    return SectionParams(curve, length, round(at, 2), round(width, 2), round(thickness, 2))


def _check_work(size: tuple[int, int], slices: int) -> None:
    """Raise BadParameter when the image would sample too much (viewer.dental.check_work)."""
    try:
        check_work(*size, slices)
    except ValueError as exc:
        raise BadParameter(str(exc)) from None
