"""Window presets a series offers: the file's own, then ones named for dental use on CT."""

from __future__ import annotations

from typing import Any

from viewer import render as rendering
from viewer.layouts import Layout

# Named for what a dentist or patient looks at on a dental CBCT; `simple` ones are offered in
# the patient's simple tools. Generic CT windows (Lung, ...) stay for the full tools.
DENTAL_PRESETS = (
    {"name": "Teeth", "center": 1200.0, "width": 3500.0, "simple": True},
    {"name": "Bone", "center": 500.0, "width": 2000.0, "simple": True},
    {"name": "Soft tissue", "center": 40.0, "width": 400.0, "simple": True},
    {"name": "Implants and fillings", "center": 2500.0, "width": 5000.0, "simple": False},
)


def window_presets(layout: Layout) -> list[dict[str, Any]]:
    """Return the series' window presets: the file's own first, then dental ones for CT."""
    if layout.modality != "CT":
        return layout.presets
    generic = {(p["center"], p["width"]) for p in rendering.CT_PRESETS}
    own = [p for p in layout.presets if (p["center"], p["width"]) not in generic]
    dental = {(p["center"], p["width"]) for p in DENTAL_PRESETS}
    rest = [p for p in rendering.CT_PRESETS if (p["center"], p["width"]) not in dental]
    return own + [dict(p) for p in DENTAL_PRESETS] + [dict(p) for p in rest]
