"""Panoramic, cross-sections, occlusal plane and arch detection on a small drawn volume."""

from __future__ import annotations

import math

import numpy as np
import pytest

from viewer.dental import (
    ArchCurve,
    cross_section,
    cross_sections,
    detect_arch,
    locate,
    occlusal_slice,
    panoramic,
    sample_curve,
)

SPACING = (0.5, 0.4, 0.4)  # slice, row, column mm
RESCALE = (1.0, -1024.0)  # stored values are HU + 1024, as in many CBCTs
CENTRE = (100.0, 110.0)  # (col, row) of the circle the teeth stand on
RADIUS_PX = 60.0
TEETH = 12
OCCLUSAL = 40  # enamel from slice 34 to 45, dentin roots from 14 to 65


def _truth() -> ArchCurve:
    angles = np.linspace(-math.pi / 2, math.pi / 2, 9)
    cx, cy = CENTRE
    points = ((cx + RADIUS_PX * math.sin(t), cy - RADIUS_PX * math.cos(t)) for t in angles)
    return ArchCurve(tuple(points), OCCLUSAL)


def _volume() -> np.ndarray:
    """Draw 12 teeth (radius 2.4 mm) on a half circle: dentin roots, enamel crowns."""
    vol = np.full((80, 200, 200), 1024 + 40, dtype=np.int16)
    rows, cols = np.mgrid[0:200, 0:200]
    cx, cy = CENTRE
    for t in np.linspace(-math.pi / 2 + 0.1, math.pi / 2 - 0.1, TEETH):
        c, r = cx + RADIUS_PX * math.sin(t), cy - RADIUS_PX * math.cos(t)
        tooth = (rows - r) ** 2 + (cols - c) ** 2 <= 6.0**2
        vol[14:66, tooth] = 1024 + 2200
        vol[34:46, tooth] = 1024 + 2900
    vol[79, 50:60, 95:105] = 1024 + 3000  # a mark on the most superior slice
    return vol


VOLUME = _volume()


class TestOcclusalPlane:
    def test_it_finds_the_middle_of_the_crowns(self) -> None:
        """The occlusal slice is within a slice of where the crowns meet."""
        assert abs(occlusal_slice(VOLUME, SPACING, RESCALE) - 39.5) <= 1

    def test_a_volume_without_teeth_has_none(self) -> None:
        """Soft tissue and bone alone give None, so the viewer keeps the middle slice."""
        vol = np.full((20, 64, 64), 1024 + 40, dtype=np.int16)
        vol[:, 20:40, 20:40] = 1024 + 1200
        assert occlusal_slice(vol, SPACING, RESCALE) is None


class TestDetectArch:
    def test_it_follows_the_teeth(self) -> None:
        """The detected curve lies within 0.5 mm of the circle on average."""
        curve = detect_arch(VOLUME, SPACING, RESCALE)
        assert abs(curve.occlusal_index - 39.5) <= 1
        s = sample_curve(curve, 1.0, SPACING[1:])
        _, depth = locate(_truth(), s.points[:, 0], s.points[:, 1], SPACING[1:])
        assert np.mean(np.abs(depth)) < 0.5

    def test_it_refuses_a_volume_without_teeth(self) -> None:
        """No teeth is a ValueError, not a made-up curve."""
        with pytest.raises(ValueError):
            detect_arch(np.zeros((10, 32, 32), dtype=np.int16), SPACING, RESCALE)


class TestPanoramic:
    def test_it_stands_upright_in_modality_units(self) -> None:
        """Rows are slices from the most superior down; values are HU."""
        pano = panoramic(VOLUME, SPACING, _truth(), 4.0, rescale=RESCALE)
        assert pano.pixels.dtype == np.float32
        assert pano.pixels.shape[0] == VOLUME.shape[0]
        assert (pano.top_slice, pano.slice_step, pano.mm_per_row) == (79, -1, 0.5)
        assert pano.slice_of(pano.row_of(OCCLUSAL)) == OCCLUSAL
        assert abs(float(pano.pixels[pano.row_of(5), 0]) - 40) < 1

    def test_columns_step_along_the_arc(self) -> None:
        """Column j lies at j * mm_per_col of arc: the curve's length fills the image."""
        pano = panoramic(VOLUME, SPACING, _truth(), 0.0)
        length = math.pi * RADIUS_PX * SPACING[1]
        assert pano.mm_per_col == 0.4
        assert pano.pixels.shape[1] == int(length / 0.4 + 1e-9) + 1

    def test_the_teeth_show_in_order(self) -> None:
        """The crown row crosses 12 bright teeth with darker gaps between them."""
        pano = panoramic(VOLUME, SPACING, _truth(), 6.0, "max", rescale=RESCALE)
        line = pano.pixels[round(pano.row_of(OCCLUSAL))] > 2500
        rises = np.flatnonzero(line[1:] & ~line[:-1])
        assert len(rises) + int(line[0]) == TEETH

    def test_the_slab_averages_or_maximises(self) -> None:
        """A 10 mm mean slab is dimmer on a tooth than its maximum."""
        mean = panoramic(VOLUME, SPACING, _truth(), 10.0, "mean", rescale=RESCALE)
        peak = panoramic(VOLUME, SPACING, _truth(), 10.0, "max", rescale=RESCALE)
        row = round(mean.row_of(OCCLUSAL))
        assert peak.pixels[row].max() == pytest.approx(2900)
        assert 1000 < mean.pixels[row].max() < 2000


class TestCrossSection:
    def test_it_measures_the_tooth_height(self) -> None:
        """Through a tooth, dentin spans slices 14-65: 26 mm at 0.5 mm, within 0.5 mm."""
        t = -math.pi / 2 + 0.1 + 3 * (math.pi - 0.2) / (TEETH - 1)
        at_mm = (t + math.pi / 2) * RADIUS_PX * SPACING[1]
        cut = cross_section(VOLUME, SPACING, _truth(), at_mm, 20.0, 1.0, rescale=RESCALE)
        centre = round(cut.col_of_mm(0.0))
        tall = np.flatnonzero(cut.pixels[:, centre] > 1100)
        assert abs((tall[-1] - tall[0] + 1) * cut.mm_per_row - 26.0) <= 0.5
        wide = np.flatnonzero(cut.pixels[round(cut.row_of(OCCLUSAL))] > 1500)
        assert abs((wide[-1] - wide[0] + 1) * cut.mm_per_col - 4.8) <= 0.5

    def test_columns_run_lingual_to_buccal(self) -> None:
        """Column 0 is width/2 inside the arch; a row of sections shares the geometry."""
        cuts = cross_sections(VOLUME, SPACING, _truth(), [10.0, 11.0, 12.0], 30.0)
        assert [c.at_mm for c in cuts] == [10.0, 11.0, 12.0]
        for cut in cuts:
            assert cut.col_origin_mm == -15.0
            assert cut.pixels.shape == (80, 76)
            assert cut.mm_of_col(cut.col_of_mm(3.0)) == pytest.approx(3.0)
        single = cross_section(VOLUME, SPACING, _truth(), 11.0, 30.0)
        assert np.array_equal(single.pixels, cuts[1].pixels)

    def test_a_volume_stored_head_first_still_stands_upright(self) -> None:
        """With slice 0 the most superior (head_last=False), row 0 is still slice 0."""
        flipped = np.ascontiguousarray(VOLUME[::-1])
        down = panoramic(flipped, SPACING, _truth(), 4.0, rescale=RESCALE, head_last=False)
        up = panoramic(VOLUME, SPACING, _truth(), 4.0, rescale=RESCALE)
        assert (down.top_slice, down.slice_step) == (0, 1)
        assert np.array_equal(down.pixels, up.pixels)

    def test_a_slice_range_limits_the_rows(self) -> None:
        """z_range=(10, 70) gives 60 rows, the top one showing slice 69."""
        cut = cross_section(VOLUME, SPACING, _truth(), 20.0, z_range=(10, 70))
        full = cross_section(VOLUME, SPACING, _truth(), 20.0)
        assert cut.pixels.shape[0] == 60 and cut.slice_of(0) == 69
        assert np.array_equal(cut.pixels, full.pixels[full.row_of(69) : full.row_of(9)])
