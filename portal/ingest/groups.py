"""Values of multi-frame (enhanced) objects from their Shared and Per-Frame Functional Groups.

Enhanced CT/MR/XA, breast tomosynthesis and multi-frame CBCT keep rescale, window, pixel
spacing and plane position in functional group macros instead of top-level elements. Pure
module (pydicom datasets); no Django.
"""

from __future__ import annotations

import math
from typing import Any

from pydicom.dataset import Dataset

# Top-level keyword -> the functional group macro sequence that carries it.
MACRO = {
    "RescaleSlope": "PixelValueTransformationSequence",
    "RescaleIntercept": "PixelValueTransformationSequence",
    "RescaleType": "PixelValueTransformationSequence",
    "WindowCenter": "FrameVOILUTSequence",
    "WindowWidth": "FrameVOILUTSequence",
    "WindowCenterWidthExplanation": "FrameVOILUTSequence",
    "VOILUTFunction": "FrameVOILUTSequence",
    "VOILUTSequence": "FrameVOILUTSequence",
    "PixelSpacing": "PixelMeasuresSequence",
    "SliceThickness": "PixelMeasuresSequence",
    "ImagePositionPatient": "PlanePositionSequence",
    "ImageOrientationPatient": "PlaneOrientationSequence",
}
SHARED = 0x52009229
PER_FRAME = 0x52009230


def _item(ds: Dataset, tag: int, index: int) -> Dataset | None:
    elem = ds.get(tag)
    if elem is None or elem.VR != "SQ":
        return None
    items = elem.value
    return items[index] if 0 <= index < len(items) else None


def _from_group(group: Dataset | None, keyword: str) -> Any:
    if group is None:
        return None
    macro = group.get(MACRO[keyword])
    if not macro:
        return None
    value = macro[0].get(keyword)
    return None if value in (None, "") else value


def frame_value(ds: Dataset, keyword: str, frame: int = 0) -> Any:
    """Return a value for one frame: per-frame group, then shared group, then top level."""
    if keyword in MACRO:
        for group in (_item(ds, PER_FRAME, frame), _item(ds, SHARED, 0)):
            value = _from_group(group, keyword)
            if value is not None:
                return value
    value = ds.get(keyword)
    return None if value in (None, "") else value


def is_enhanced(ds: Dataset) -> bool:
    """Tell whether the object carries functional groups."""
    return SHARED in ds or PER_FRAME in ds


def frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def per_frame(ds: Dataset, keyword: str) -> list[Any] | None:
    """Return the value for every frame if any frame has its own, else None."""
    if PER_FRAME not in ds or keyword not in MACRO:
        return None
    frames = frame_count(ds)
    items = ds[PER_FRAME].value
    if not any(_from_group(items[k], keyword) is not None for k in range(min(frames, len(items)))):
        return None
    return [frame_value(ds, keyword, k) for k in range(frames)]


def _finite(value: str) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _floats(value: Any, size: int) -> list[float] | None:
    try:
        numbers = [float(x) for x in value]
    except (TypeError, ValueError):
        return None
    ok = len(numbers) == size and all(math.isfinite(n) for n in numbers)
    return numbers if ok else None


def frame_geometry(ds: Dataset) -> dict[str, Any]:
    """Per-frame positions and rescale of an enhanced object, when frames carry their own."""
    out: dict[str, Any] = {}
    positions = per_frame(ds, "ImagePositionPatient")
    if positions is not None:
        vectors = [_floats(p, 3) if p is not None else None for p in positions]
        if all(vectors):
            out["frame_positions"] = vectors
    slopes, intercepts = per_frame(ds, "RescaleSlope"), per_frame(ds, "RescaleIntercept")
    if slopes is not None or intercepts is not None:
        n = len(slopes or intercepts or [])
        pairs = [
            [
                _finite(str((slopes or [1] * n)[k] or 1)) or 1.0,
                _finite(str((intercepts or [0] * n)[k] or 0)) or 0.0,
            ]
            for k in range(n)
        ]
        if len({tuple(p) for p in pairs}) > 1:
            out["frame_rescale"] = pairs
    return out
