"""The arch curve: a smooth curve through its control points and the coordinates it defines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from viewer.dental import (
    ArchCurve,
    arch_position,
    curve_point,
    locate,
    sample_curve,
    voxel_at,
)
from viewer.dental.curve import curve_length

# A half circle of radius 100 px around (200, 250), from the patient's right over the front.
CIRCLE = ArchCurve(
    tuple((200 - 100 * math.cos(t), 250 - 100 * math.sin(t)) for t in np.linspace(0, math.pi, 9)),
    occlusal_index=40,
)


class TestCurve:
    def test_it_passes_through_its_control_points(self) -> None:
        """Every control point lies on the sampled curve."""
        s = sample_curve(CIRCLE, 0.05)
        for point in CIRCLE.points:
            assert np.min(np.linalg.norm(s.points - point, axis=1)) < 0.05

    def test_it_follows_a_circle_closely(self) -> None:
        """Nine points on a half circle give a curve within 0.25 px of it, of length pi * r."""
        s = sample_curve(CIRCLE, 1.0)
        radius = np.linalg.norm(s.points - (200, 250), axis=1)
        assert np.max(np.abs(radius - 100)) < 0.25
        assert curve_length(CIRCLE) == pytest.approx(math.pi * 100, rel=1e-3)

    def test_samples_are_evenly_spaced_by_arc_length_in_mm(self) -> None:
        """With 0.25 mm pixels, samples every 2 mm are 8 px apart and arc counts mm."""
        s = sample_curve(CIRCLE, 2.0, pixel_spacing=(0.25, 0.25))
        gaps = np.linalg.norm(np.diff(s.points, axis=0), axis=1)
        assert np.allclose(gaps, 8.0, atol=0.05)
        assert np.allclose(np.diff(s.arc_mm), 2.0)

    def test_normals_point_buccal(self) -> None:
        """Normals are unit vectors pointing away from the inside of the arch."""
        s = sample_curve(CIRCLE, 5.0)
        assert np.allclose(np.linalg.norm(s.normals, axis=1), 1.0)
        outward = (s.points - (200, 250)) / np.linalg.norm(s.points - (200, 250), axis=1)[:, None]
        assert np.min(np.sum(outward * s.normals, axis=1)) > 0.999

    def test_normals_point_buccal_in_either_order(self) -> None:
        """Listing the points left to right still gives buccal normals."""
        reverse = ArchCurve(tuple(reversed(CIRCLE.points)))
        s = sample_curve(reverse, 5.0)
        outward = s.points - (200, 250)
        assert np.min(np.sum(outward * s.normals, axis=1)) > 0

    def test_dragging_a_point_moves_the_curve_locally(self) -> None:
        """Moving the middle point leaves the curve near the ends where it was."""
        moved = CIRCLE.moved(4, 200, 130)
        before, after = sample_curve(CIRCLE, 1.0), sample_curve(moved, 1.0)
        start = np.linalg.norm(after.points[:30] - before.points[:30], axis=1)
        assert start.max() < 1e-6
        assert np.min(np.linalg.norm(after.points - (200, 130), axis=1)) < 0.5

    def test_locate_inverts_curve_point(self) -> None:
        """A point at (arc, depth) is located back at the same arc and depth."""
        arc = np.array([10.0, 80.0, 120.0, 150.0])
        depth = np.array([-12.0, 0.0, 7.5, 3.0])
        col_row = curve_point(CIRCLE, arc, depth, (0.5, 0.5))
        back_arc, back_depth = locate(CIRCLE, col_row[:, 0], col_row[:, 1], (0.5, 0.5))
        assert np.allclose(back_arc, arc, atol=0.05)
        assert np.allclose(back_depth, depth, atol=0.05)

    def test_voxels_map_to_arch_coordinates_and_back(self) -> None:
        """voxel_at and arch_position are inverses, slice index passed through."""
        spacing = (0.4, 0.3, 0.3)
        voxel = voxel_at(CIRCLE, spacing, [20.0, 60.0], [12, 33.5], [1.0, -2.0])
        assert voxel.shape == (2, 3)
        assert np.allclose(voxel[:, 0], [12, 33.5])
        back = arch_position(CIRCLE, spacing, voxel)
        assert np.allclose(back, [[20.0, 1.0, 12], [60.0, -2.0, 33.5]], atol=0.05)


class TestArchCurveValues:
    def test_it_round_trips_through_a_dict(self) -> None:
        """as_dict output builds the same curve."""
        assert ArchCurve.from_dict(CIRCLE.as_dict()) == CIRCLE

    def test_it_refuses_hostile_input(self) -> None:
        """Anything but 2-32 finite number pairs and an integer slice is a ValueError."""
        bad = [
            None,
            {"points": "x"},
            {"points": [[1, 2]]},
            {"points": [[1, 2], [3, "4"]]},
            {"points": [[1, 2], [3, float("nan")]]},
            {"points": [[1, 2], [3, 1e308]]},
            {"points": [[1, 2], [3, 4, 5]]},
            {"points": [[1, 2], [3, True]]},
            {"points": [[k, k] for k in range(40)]},
            {"points": [[1, 2], [3, 4]], "occlusal_index": -1},
            {"points": [[1, 2], [3, 4]], "occlusal_index": 1.5},
        ]
        for data in bad:
            with pytest.raises(ValueError):
                ArchCurve.from_dict(data)

    def test_a_point_curve_has_no_length(self) -> None:
        """Two equal points cannot be sampled."""
        with pytest.raises(ValueError):
            sample_curve(ArchCurve(((5, 5), (5, 5))))
