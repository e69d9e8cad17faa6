"""Overlay planes (60xx): graphics and ROI bitmaps drawn over the image, as dcmtk draws them.

Pure module (pydicom, numpy); no Django. A plane's origin and size may differ from the
image's; each set bit is drawn in the brightest grey, as dcmj2pnm does by default.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

GROUPS = range(0x6000, 0x6020, 2)


def overlay_masks(ds: Dataset, frames: int, rows: int, cols: int) -> np.ndarray | None:
    """Return a (frames, rows, cols) bool mask of every overlay plane, or None if none."""
    out: np.ndarray | None = None
    for group in GROUPS:
        if (group, 0x3000) not in ds:
            continue
        try:
            bits = np.asarray(ds.overlay_array(group)).astype(bool)
            origin = ds[group, 0x0050].value if (group, 0x0050) in ds else [1, 1]
            row0, col0 = int(origin[0]) - 1, int(origin[1]) - 1
            first = int(ds[group, 0x0051].value) - 1 if (group, 0x0051) in ds else 0
        # A damaged overlay must not hide the image; it is left out.
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            continue
        if bits.ndim == 2:
            bits = bits[np.newaxis]
        if out is None:
            out = np.zeros((frames, rows, cols), dtype=bool)
        # A single-frame overlay of a multi-frame image applies to every frame.
        targets = range(frames) if len(bits) == 1 else range(first, first + len(bits))
        for k, frame in enumerate(targets):
            if not 0 <= frame < frames:
                continue
            plane = bits[0 if len(bits) == 1 else k]
            _paste(out[frame], plane, row0, col0)
    return out


def _paste(target: np.ndarray, plane: np.ndarray, row0: int, col0: int) -> None:
    rows, cols = target.shape
    r_from, c_from = max(0, -row0), max(0, -col0)
    r_to = min(plane.shape[0], rows - row0)
    c_to = min(plane.shape[1], cols - col0)
    if r_to <= r_from or c_to <= c_from:
        return
    target[row0 + r_from : row0 + r_to, col0 + c_from : col0 + c_to] |= plane[
        r_from:r_to, c_from:c_to
    ]


def draw(img_u8: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Return the windowed image with the overlay's set bits in white."""
    if mask is None or not mask.any() or mask.shape != img_u8.shape[:2]:
        return img_u8
    out = img_u8.copy()
    out[mask] = 255
    return out
