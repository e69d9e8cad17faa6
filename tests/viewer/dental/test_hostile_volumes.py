"""Dental views of volumes that are not what they seem: metal, absurd spacing, few slices."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from portal.demo.voxels import RESCALE_INTERCEPT, iter_slices_hu
from tests.viewer.dental_helpers import TINY_DENTAL
from viewer import dental
from viewer.dental_params import BadParameter, parse_panoramic, parse_section


def _phantom() -> np.ndarray:
    return np.stack([hu - RESCALE_INTERCEPT for hu in iter_slices_hu(TINY_DENTAL, seed=0)])


def _pelvis_with_a_hip_stem() -> np.ndarray:
    z, y, x = np.ogrid[0:200, 0:256, 0:256]
    vol = np.full((200, 256, 256), 40, np.int16)
    stem = ((x - 180) ** 2 + (y - 140) ** 2 < (7 / 1.5) ** 2) & (z >= 40) & (z < 140)
    vol[np.broadcast_to(stem, vol.shape)] = 3000
    return vol


def test_a_hip_stem_is_not_a_set_of_teeth() -> None:
    vol = _pelvis_with_a_hip_stem()
    assert dental.occlusal_slice(vol, (2.0, 1.5, 1.5)) is None
    with pytest.raises(ValueError):
        dental.detect_arch(vol, (2.0, 1.5, 1.5), occlusal_index=90)


def test_a_short_stem_is_not_an_arch_either() -> None:
    """Metal short enough to pass for crowns still traces no open arch of 60 mm or more."""
    vol = _pelvis_with_a_hip_stem()
    vol[:80] = 40
    vol[100:] = 40
    assert dental.occlusal_slice(vol, (2.0, 1.5, 1.5)) is None


def test_a_ring_of_dense_bone_is_refused_as_an_arch() -> None:
    y, x = np.ogrid[0:200, 0:200]
    ring = np.abs(np.hypot(x - 100, y - 100) - 60) < 3
    vol = np.full((40, 200, 200), 40, np.int16)
    vol[15:25, ring] = 3000
    with pytest.raises(ValueError):
        dental.detect_arch(vol, (0.5, 0.5, 0.5), occlusal_index=20)


def test_the_phantom_is_still_dental() -> None:
    vol = _phantom()
    occlusal = dental.occlusal_slice(vol, (1.0, 0.8, 0.8), (1.0, float(RESCALE_INTERCEPT)))
    assert occlusal is not None and 25 <= occlusal <= 40


def _without_teeth(cols: slice) -> np.ndarray:
    vol = _phantom()
    part = vol[:, :, cols]
    part[part > 1800 - RESCALE_INTERCEPT] = 40 - RESCALE_INTERCEPT
    return vol


def test_missing_front_teeth_still_make_a_dental_scan() -> None:
    vol = _without_teeth(slice(44, 84))
    assert dental.occlusal_slice(vol, (1.0, 0.8, 0.8), (1.0, float(RESCALE_INTERCEPT))) is not None


def test_teeth_on_one_side_only_trace_no_arch() -> None:
    vol = _without_teeth(slice(64, 128))
    assert dental.occlusal_slice(vol, (1.0, 0.8, 0.8), (1.0, float(RESCALE_INTERCEPT))) is None


def test_few_thin_slices_give_an_index_inside_the_volume() -> None:
    vol = np.full((6, 64, 64), -1000, np.int16)
    vol[5, 20:40, 20:40] = 3000
    index = dental.occlusal_slice(vol, (0.1, 0.3, 0.3))
    assert index is None or 0 <= index < 6


def test_tiny_slice_spacing_is_answered_at_once() -> None:
    vol = np.full((300, 64, 64), -1000, np.int16)
    vol[150, 20:40, 20:40] = 3000
    for dz in (1e-5, 1e-7, 0.06):
        start = time.monotonic()
        index = dental.occlusal_slice(vol, (dz, 0.3, 0.3))
        assert time.monotonic() - start < 1.0
        assert index is None or 0 <= index < 300


def test_a_negative_rescale_slope_finds_the_same_teeth() -> None:
    vol = _phantom().astype(np.int32)
    slope_up = dental.occlusal_slice(vol, (1.0, 0.8, 0.8), (1.0, float(RESCALE_INTERCEPT)))
    flipped = dental.occlusal_slice(-vol, (1.0, 0.8, 0.8), (-1.0, float(RESCALE_INTERCEPT)))
    assert flipped == slope_up


def test_a_feet_first_scan_still_starts_at_the_patients_right() -> None:
    vol = _phantom()
    spacing, rescale = (1.0, 0.8, 0.8), (1.0, float(RESCALE_INTERCEPT))
    head_first = dental.detect_arch(vol, spacing, rescale)
    # Feet-first supine: the row direction points to the patient's right, so columns mirror.
    feet_first = dental.detect_arch(vol[:, :, ::-1], spacing, rescale, mirror=(False, True))
    cols = vol.shape[2]
    assert head_first.points[0][0] < cols / 2
    assert feet_first.points[0][0] > cols / 2  # the patient's right, now on the image's right
    back = [(cols - 1 - c, r) for c, r in feet_first.points]
    assert np.allclose(back, head_first.points, atol=1.0)


def test_dental_views_refuse_spacing_no_cbct_has() -> None:
    vol = np.zeros((20, 64, 64), np.int16)
    curve = dental.ArchCurve(((10, 40), (32, 10), (54, 40)), 5)
    for spacing in ((0.002, 0.3, 0.3), (0.3, 0.002, 0.002), (0.3, 0.3, 0.0)):
        with pytest.raises(dental.SpacingError):
            dental.panoramic(vol, spacing, curve)
        with pytest.raises(dental.SpacingError):
            dental.cross_section(vol, spacing, curve, 5.0)
        assert dental.occlusal_slice(vol, spacing) is None


def test_a_thick_slab_on_few_fine_slices_costs_a_bounded_plan() -> None:
    """Few slices do not make a huge plan affordable (this one took over 400 MB before)."""
    px = 0.06
    pts = tuple((k * 511 / 31, 256.0 + (30 if k % 2 else -30)) for k in range(32))
    tracemalloc.start()
    vol, curve = np.zeros((3, 512, 512), np.int16), dental.ArchCurve(pts)
    image = dental.panoramic(vol, (px,) * 3, curve, thickness_mm=30.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert image.pixels.shape[0] == 3
    assert peak < 150e6


def test_a_panoramic_too_large_is_refused_before_any_work() -> None:
    shape, px = (3, 6000, 6000), 0.05
    pts = ";".join(f"{k * 5999 / 31:.1f},{3000 + (300 if k % 2 else -300)}" for k in range(32))
    q = {"points": pts, "occlusal": "0", "thickness": "30", "mode": "mean"}
    with pytest.raises(BadParameter):
        parse_panoramic(q, shape, (px, px))
    curve = dental.ArchCurve(tuple(tuple(map(float, p.split(","))) for p in pts.split(";")), 0)
    tracemalloc.start()
    with pytest.raises(dental.TooLarge):
        dental.panoramic(np.zeros((3, 1, 1), np.int16), (px, px, px), curve, 30.0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20e6


def test_a_section_is_bounded_by_its_samples() -> None:
    shape, px = (600, 512, 512), 0.05
    q = {"points": "100,250;256,100;400,250", "occlusal": "0", "at": "5", "width": "80",
         "thickness": "10"}  # fmt: skip
    with pytest.raises(BadParameter):
        parse_section(q, shape, (px, px))
    curve = dental.ArchCurve(((100, 250), (256, 100), (400, 250)), 0)
    with pytest.raises(dental.TooLarge):
        dental.cross_section(np.zeros(shape, np.int16), (px, px, px), curve, 5.0, 80.0, 10.0)


def test_a_usual_scan_stays_within_bounds() -> None:
    """450 slices at 0.3 mm, a 150 mm arch, the thickest slab: accepted."""
    columns, taps = dental.panoramic_size(150.0, 30.0, 0.3)
    dental.check_work(columns, taps, 450)
    columns, taps = dental.panoramic_size(150.0, 30.0, 0.1)
    dental.check_work(columns, taps, 200)
