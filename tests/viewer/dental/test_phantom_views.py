"""Dental views of the generated CBCT show its known anatomy where the geometry puts it."""

from __future__ import annotations

import numpy as np
import pytest

from portal.demo.anatomy import PhantomGeometry
from portal.demo.voxels import RESCALE_INTERCEPT, iter_slices_hu
from viewer import dental
from viewer.dental import ArchCurve, Reformat

GEOMETRY = PhantomGeometry()  # the demo's 300 slices of 512 x 512 at 0.3 mm
SPACING = (0.3, 0.3, 0.3)
PIXEL = SPACING[1:]
RESCALE = (1.0, float(RESCALE_INTERCEPT))


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    """Return the volume as the viewer holds it: stored values, slice 0 the lowest."""
    return np.stack([hu - RESCALE_INTERCEPT for hu in iter_slices_hu(GEOMETRY, seed=0)])


@pytest.fixture(scope="module")
def arch(volume: np.ndarray) -> ArchCurve:
    return dental.detect_arch(volume, SPACING, RESCALE)


def _pixel(x_mm: float, y_mm: float) -> tuple[float, float]:
    """Return (col, row) of a patient point."""
    row, col = GEOMETRY.patient_to_pixel(x_mm, y_mm)
    return col, row


def _arc_of(curve: ArchCurve, x_mm: float, y_mm: float) -> float:
    arc, _ = dental.locate(curve, *_pixel(x_mm, y_mm), PIXEL)
    return float(arc)


def _section(volume: np.ndarray, curve: ArchCurve, at_mm: float) -> Reformat:
    return dental.cross_section(volume, SPACING, curve, at_mm, rescale=RESCALE)


class TestOcclusalPlane:
    def test_it_is_found_within_two_slices(self, volume: np.ndarray) -> None:
        """The slice between the upper and lower crowns is the phantom's occlusal plane."""
        found = dental.occlusal_slice(volume, SPACING, RESCALE)
        assert abs(found - GEOMETRY.occlusal_slice) <= 2
        assert abs(GEOMETRY.occlusal_slice - GEOMETRY.slices // 2) > 20  # not the middle


class TestArch:
    def test_it_lies_within_1_mm_of_the_true_curve(self, arch: ArchCurve) -> None:
        """Every mm of the detected curve is on average within 1 mm of the true arch."""
        points = dental.sample_curve(arch, 1.0, PIXEL).points
        x0, y0 = GEOMETRY.origin_mm()
        s, d = GEOMETRY.arch_locate(x0 + points[:, 0] * 0.3, y0 + points[:, 1] * 0.3)
        assert np.mean(np.abs(d)) < 1.0
        assert np.max(np.abs(d)) < 2.0

    def test_it_spans_the_teeth_right_to_left(self, arch: ArchCurve) -> None:
        """It starts behind the upper right second molar and ends behind the left one."""
        points = dental.sample_curve(arch, 1.0, PIXEL).points
        x0, y0 = GEOMETRY.origin_mm()
        s, _ = GEOMETRY.arch_locate(x0 + points[:, 0] * 0.3, y0 + points[:, 1] * 0.3)
        assert s[0] < GEOMETRY.tooth(17).s_mm and s[-1] > GEOMETRY.tooth(27).s_mm
        assert np.all(np.diff(s) > 0)
        assert 6 <= len(arch.points) <= 10
        assert abs(arch.occlusal_index - GEOMETRY.occlusal_slice) <= 2


class TestPanoramic:
    @pytest.mark.parametrize("upper", [True, False])
    def test_the_teeth_show_in_order_with_gaps(
        self, volume: np.ndarray, arch: ArchCurve, upper: bool
    ) -> None:
        """Each crown is bright at its known arc position, darker at the gaps beside it."""
        pano = dental.panoramic(volume, SPACING, arch, 10.0, "mean", rescale=RESCALE)
        z = GEOMETRY.occlusal_z_mm + (3.5 if upper else -3.5)
        line = pano.pixels[round(pano.row_of(GEOMETRY.slice_of_z(z)))]
        teeth = [t for t in GEOMETRY.teeth if t.upper == upper]
        columns = [pano.col_of_mm(_arc_of(arch, t.x_mm, t.y_mm)) for t in teeth]
        assert np.all(np.diff(columns) > 0)  # 17 ... 11, 21 ... 27 (47 ... 41, 31 ... 37)
        crowns = [float(line[round(c)]) for c in columns]
        assert min(crowns) > 1300
        for left, right in zip(teeth, teeth[1:], strict=False):
            gap_s = (
                left.s_mm + left.mesiodistal_mm / 2 + right.s_mm - right.mesiodistal_mm / 2
            ) / 2
            x, y = GEOMETRY.arch_point(gap_s)
            gap = float(line[round(pano.col_of_mm(_arc_of(arch, float(x), float(y))))])
            assert gap < 0.6 * min(crowns[teeth.index(left)], crowns[teeth.index(right)])

    def test_a_column_is_the_arc_length_in_mm(self, volume: np.ndarray, arch: ArchCurve) -> None:
        """The distance between the canines' columns is their distance along the arch."""
        pano = dental.panoramic(volume, SPACING, arch, 10.0, "max", rescale=RESCALE)
        a, b = GEOMETRY.tooth(13), GEOMETRY.tooth(23)
        cols = [pano.col_of_mm(_arc_of(arch, t.x_mm, t.y_mm)) for t in (a, b)]
        assert abs((cols[1] - cols[0]) * pano.mm_per_col - (b.s_mm - a.s_mm)) < 1.0


class TestCrossSection:
    @pytest.mark.parametrize("number", [45, 43, 31, 34])
    def test_a_lower_tooth_measures_its_known_length(
        self, volume: np.ndarray, arch: ArchCurve, number: int
    ) -> None:
        """From biting surface to root tip, the tooth's height matches within 0.5 mm."""
        tooth = GEOMETRY.tooth(number)
        cut = _section(volume, arch, _arc_of(arch, tooth.x_mm, tooth.y_mm))
        centre = round(cut.col_of_mm(0.0))
        near = cut.pixels[:, centre - 10 : centre + 11].max(axis=1)  # beside the pulp
        row = round(cut.row_of(GEOMETRY.slice_of_z(tooth.occlusal_z_mm - 5.0)))
        dense = near > (dental.arch.TOOTH_HU + 900) / 2
        top, bottom = row, row
        while dense[top - 1]:
            top -= 1
        while dense[bottom + 1]:
            bottom += 1
        measured = (bottom - top + 1) * cut.mm_per_row
        assert abs(measured - tooth.length_mm) <= 0.5

    def test_the_canal_is_where_the_phantom_put_it(
        self, volume: np.ndarray, arch: ArchCurve
    ) -> None:
        """Under the first molars the canal's centre is within 0.5 mm of its known place."""
        for number in (46, 36):
            tooth = GEOMETRY.tooth(number)
            cut = _section(volume, arch, _arc_of(arch, tooth.x_mm, tooth.y_mm))
            canal_d, canal_z = (float(v) for v in GEOMETRY.canal_at(tooth.s_mm))
            top = round(cut.row_of(GEOMETRY.slice_of_z(tooth.apex_z_mm - 0.5)))
            bottom = round(cut.row_of(GEOMETRY.slice_of_z(GEOMETRY.mandible_floor_z_mm + 3)))
            left, right = round(cut.col_of_mm(-3.5)), round(cut.col_of_mm(3.5))
            window = cut.pixels[top:bottom, left:right]
            rows, cols = np.nonzero(window < 250)  # the canal's soft tissue, in bone
            depth = cut.mm_of_col(left + cols.mean())
            z = GEOMETRY.slice_z_mm(cut.slice_of(top + rows.mean()))
            assert abs(depth - canal_d) <= 0.5 and abs(z - canal_z) <= 0.5, number

    def test_sections_cost_little(self, volume: np.ndarray, arch: ArchCurve) -> None:
        """A row of 1 mm-spaced sections along the whole arch is cut in one pass."""
        length = dental.curve.curve_length(arch, PIXEL)
        cuts = dental.cross_sections(volume, SPACING, arch, np.arange(0, length, 1.0))
        assert len(cuts) == int(np.ceil(length))
        assert all(c.pixels.shape == (GEOMETRY.slices, 101) for c in cuts)


class TestCanalThroughTheViews:
    def test_the_canal_maps_to_its_arch_coordinates(self, arch: ArchCurve) -> None:
        """Canal points map to the phantom's (arc, depth, slice) and back to the same voxels."""
        points = GEOMETRY.canal_points_mm(side=1)
        x0, y0 = GEOMETRY.origin_mm()
        voxels = np.stack(
            [
                [GEOMETRY.slice_of_z(z) for z in points[:, 2]],
                (points[:, 1] - y0) / 0.3,
                (points[:, 0] - x0) / 0.3,
            ],
            axis=1,
        )
        mapped = dental.arch_position(arch, SPACING, voxels)
        s = np.arange(len(points)) * 1.0 + GEOMETRY.canal_nodes()[0][0]
        canal_d, _ = GEOMETRY.canal_at(s)
        assert np.allclose(mapped[:, 1], canal_d, atol=1.0)  # the detected arch is within 1 mm
        assert np.allclose(np.diff(mapped[:, 0]), 1.0, atol=0.1)  # 1 mm apart along the arch
        assert np.allclose(mapped[:, 2], voxels[:, 0])
        back = dental.voxel_at(arch, SPACING, mapped[:, 0], mapped[:, 2], mapped[:, 1])
        assert np.allclose(back, voxels, atol=0.05)

    def test_the_traced_canal_is_dark_in_every_view(
        self, volume: np.ndarray, arch: ArchCurve
    ) -> None:
        """On the cross-section at each traced point, the traced spot is soft tissue in bone."""
        points = GEOMETRY.canal_points_mm(side=-1)[3::4]
        rows, cols = zip(*(GEOMETRY.patient_to_pixel(x, y) for x, y, _ in points), strict=True)
        slices = [GEOMETRY.slice_of_z(z) for z in points[:, 2]]
        mapped = dental.arch_position(arch, SPACING, np.stack([slices, rows, cols], axis=1))
        cuts = dental.cross_sections(volume, SPACING, arch, mapped[:, 0], rescale=RESCALE)
        for cut, (_, depth, index) in zip(cuts, mapped, strict=True):
            value = cut.pixels[round(cut.row_of(index)), round(cut.col_of_mm(depth))]
            assert value < 400


class TestPhantom:
    def test_it_is_deterministic_from_its_seed(self) -> None:
        """The same seed gives the same voxels; another seed other noise on the same anatomy."""
        small = PhantomGeometry(slices=40, rows=128, columns=128, pixel_spacing_mm=1.0,
                                first_slice_z_mm=-28.0, marker_slice=5)  # fmt: skip
        a, b, c = (np.stack(list(iter_slices_hu(small, seed=s))) for s in (7, 7, 8))
        assert np.array_equal(a, b)
        assert not np.array_equal(a, c)
        assert abs(float(np.mean(a.astype(float) - c))) < 2

    def test_it_has_28_numbered_teeth(self) -> None:
        """Upper 17-11, 21-27 then lower 47-41, 31-37, each on the arch."""
        numbers = [t.number for t in GEOMETRY.teeth]
        upper = [*range(17, 10, -1), *range(21, 28)]
        lower = [*range(47, 40, -1), *range(31, 38)]
        assert numbers == upper + lower
        for tooth in GEOMETRY.teeth:
            _, d = GEOMETRY.arch_locate(tooth.x_mm, tooth.y_mm)
            assert abs(float(d)) < 1e-6
