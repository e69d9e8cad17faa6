"""Geometry of the phantom dental CBCT: the volume, the arch, teeth, canals, sinuses, airway.

Everything is in patient millimetres (LPS: +x the patient's left, +y posterior, +z superior),
so tests can predict where each feature lands in any view. Along the dental arch, `s` is the
arc length in mm from the midline (negative on the patient's right) and `d` the distance
across it, positive towards the cheeks and lips (buccal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

# (FDI position, mesio-distal width, bucco-lingual width, crown height, root length) in mm,
# from the midline back: central and lateral incisors, canine, premolars, first and second molar.
UPPER_TEETH = (
    (1, 8.5, 7.0, 9.0, 13.0),
    (2, 6.5, 6.0, 8.5, 13.0),
    (3, 7.5, 8.0, 9.0, 17.0),
    (4, 7.0, 9.0, 8.0, 14.0),
    (5, 6.5, 9.0, 7.5, 14.0),
    (6, 10.0, 11.0, 7.0, 12.5),
    (7, 9.0, 10.5, 7.0, 11.5),
)
LOWER_TEETH = (
    (1, 5.0, 6.0, 8.0, 12.5),
    (2, 5.5, 6.3, 8.0, 14.0),
    (3, 7.0, 7.5, 8.5, 16.0),
    (4, 7.0, 7.5, 8.0, 14.0),
    (5, 7.0, 8.0, 7.5, 14.5),
    (6, 11.0, 10.5, 7.0, 14.0),
    (7, 10.5, 10.0, 7.0, 13.0),
)
INTERDENTAL_GAP_MM = 0.4
# How far below the crown a multi-rooted tooth's roots split.
ROOT_TRUNK_MM = 3.0


@dataclass(frozen=True)
class Tooth:
    """One tooth: an upright body with an elliptical cross-section centred on the arch."""

    number: int  # FDI: 11-17 upper right, 21-27 upper left, 31-37 lower left, 41-47 lower right
    upper: bool
    s_mm: float  # arc position of its axis
    x_mm: float
    y_mm: float
    mesiodistal_mm: float
    buccolingual_mm: float
    crown_mm: float
    root_mm: float
    occlusal_z_mm: float  # its biting surface
    tangent: tuple[float, float]  # unit (x, y) along the arch, towards the patient's left

    @property
    def length_mm(self) -> float:
        """Return the tooth's height from the biting surface to the root tip."""
        return self.crown_mm + self.root_mm

    @property
    def cej_z_mm(self) -> float:
        """Return z of the neck, where crown (enamel) meets root."""
        return self.occlusal_z_mm + (self.crown_mm if self.upper else -self.crown_mm)

    @property
    def roots(self) -> tuple[tuple[float, float, float, float], ...]:
        """Return each root as (mesio-distal offset, bucco-lingual offset, width, thickness),
        offsets as fractions of the tooth's widths and sizes as fractions of its half widths.

        Below ROOT_TRUNK_MM of root, molars split into two roots (lower) or three (upper:
        two buccal, one palatal), upper first premolars into a buccal and a palatal root.
        """
        position = self.number % 10
        if position >= 6:
            if self.upper:
                return ((-0.25, 0.2, 0.42, 0.5), (0.25, 0.2, 0.42, 0.5), (0.0, -0.22, 0.5, 0.5))
            return ((-0.25, 0.0, 0.45, 0.9), (0.25, 0.0, 0.45, 0.9))
        if position == 4 and self.upper:
            return ((0.0, 0.22, 0.9, 0.45), (0.0, -0.22, 0.9, 0.45))
        return ((0.0, 0.0, 1.0, 1.0),)

    @property
    def apex_z_mm(self) -> float:
        """Return z of the root tip."""
        return self.occlusal_z_mm + (self.length_mm if self.upper else -self.length_mm)


@dataclass(frozen=True)
class PhantomGeometry:
    """Describe the phantom so tests can predict where each feature lands in the images."""

    slices: int = 300
    rows: int = 512
    columns: int = 512
    pixel_spacing_mm: float = 0.3
    slice_thickness_mm: float = 0.3
    first_slice_z_mm: float = -45.0
    # Head: ellipsoid of soft tissue in patient mm, the cranium's bone only high up.
    head_semi_axes_mm: tuple[float, float, float] = (70.0, 75.0, 130.0)
    head_center_z_mm: float = 30.0
    skull_inner_fraction: float = 0.90
    skull_outer_fraction: float = 0.965
    # The plane between the upper and lower teeth, held 2 mm apart by a bite block.
    occlusal_z_mm: float = -8.0
    bite_gap_mm: float = 2.0
    # Dental arch: half an ellipse opening backwards (its ends at y = arch_back_y_mm), then
    # straight backwards into the rami of the mandible.
    arch_half_width_mm: float = 28.0
    arch_depth_mm: float = 40.0
    arch_back_y_mm: float = -2.0
    canal_radius_mm: float = 1.3
    # Fiducials: two dense spheres, centres exactly marker_distance_mm apart along x.
    marker_slice: int = 100
    marker_distance_mm: float = 40.0
    marker_y_mm: float = 25.0
    marker_radius_mm: float = 1.5

    def __post_init__(self) -> None:
        if self.slices < 1 or self.rows < 16 or self.columns < 16:
            raise ValueError("phantom must have at least 1 slice of 16x16 pixels")
        if not 0 <= self.marker_slice < self.slices:
            raise ValueError("marker_slice must be inside the volume")
        for row, col in self.marker_pixels():
            if not (0 <= row < self.rows and 0 <= col < self.columns):
                raise ValueError("markers must lie inside the image")

    # ------------------------------------------------------------ volume geometry

    def origin_mm(self) -> tuple[float, float]:
        """Return patient (x, y) of the centre of pixel (0, 0), which centres the image on 0."""
        ps = self.pixel_spacing_mm
        return (round(-(self.columns - 1) / 2 * ps, 6), round(-(self.rows - 1) / 2 * ps, 6))

    def slice_z_mm(self, index: float) -> float:
        """Return the patient z of a slice; it grows by slice thickness per index."""
        return self.first_slice_z_mm + index * self.slice_thickness_mm

    def slice_of_z(self, z_mm: float) -> float:
        """Return the (fractional) slice index at patient z."""
        return (z_mm - self.first_slice_z_mm) / self.slice_thickness_mm

    def image_position(self, index: int) -> tuple[float, float, float]:
        """Return ImagePositionPatient of a slice."""
        x0, y0 = self.origin_mm()
        return (x0, y0, self.slice_z_mm(index))

    def pixel_to_patient(self, row: float, col: float, index: int) -> tuple[float, float, float]:
        """Return patient mm of a (row, col) pixel position in slice index."""
        x0, y0 = self.origin_mm()
        ps = self.pixel_spacing_mm
        return (x0 + col * ps, y0 + row * ps, self.slice_z_mm(index))

    def patient_to_pixel(self, x: float, y: float) -> tuple[float, float]:
        """Return the (row, col) pixel position of patient (x, y), possibly fractional."""
        x0, y0 = self.origin_mm()
        return ((y - y0) / self.pixel_spacing_mm, (x - x0) / self.pixel_spacing_mm)

    def marker_positions_mm(self) -> tuple[tuple[float, float, float], ...]:
        """Return patient (x, y, z) of both marker centres, right one first."""
        z = self.slice_z_mm(self.marker_slice)
        half = self.marker_distance_mm / 2
        return ((-half, self.marker_y_mm, z), (half, self.marker_y_mm, z))

    def marker_pixels(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """Return (row, col) of both marker centres in marker_slice, fractional in general."""
        (xa, ya, _), (xb, yb, _) = self.marker_positions_mm()
        return (self.patient_to_pixel(xa, ya), self.patient_to_pixel(xb, yb))

    @property
    def occlusal_slice(self) -> float:
        """Return the (fractional) slice index of the occlusal plane."""
        return self.slice_of_z(self.occlusal_z_mm)

    # ------------------------------------------------------------ the arch

    @cached_property
    def _ellipse_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Return angle phi (0 at the midline, pi/2 at the back) and arc length from the midline."""
        a, b = self.arch_half_width_mm, self.arch_depth_mm
        phi = np.linspace(0.0, math.pi / 2, 4001)
        speed = np.hypot(a * np.cos(phi), b * np.sin(phi))
        arc = np.concatenate([[0.0], np.cumsum((speed[1:] + speed[:-1]) / 2 * np.diff(phi))])
        return phi, arc

    @property
    def arch_quarter_mm(self) -> float:
        """Return the arc length from the midline to where the arch turns straight back."""
        return float(self._ellipse_table[1][-1])

    def arch_point(self, s_mm: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return patient (x, y) of the arch at arc lengths s (negative: the patient's right)."""
        s = np.asarray(s_mm, dtype=np.float64)
        a, b, back = self.arch_half_width_mm, self.arch_depth_mm, self.arch_back_y_mm
        phi_t, arc_t = self._ellipse_table
        along = np.abs(s)
        phi = np.interp(np.minimum(along, arc_t[-1]), arc_t, phi_t)
        extra = np.maximum(along - arc_t[-1], 0.0)
        x = np.sign(s) * a * np.sin(phi)
        y = back - b * np.cos(phi) + extra
        return x, y

    def arch_tangent(self, s_mm: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return unit (x, y) along the arch at s, pointing towards the patient's left."""
        s = np.asarray(s_mm, dtype=np.float64)
        phi_t, arc_t = self._ellipse_table
        phi = np.interp(np.minimum(np.abs(s), arc_t[-1]), arc_t, phi_t)
        a, b = self.arch_half_width_mm, self.arch_depth_mm
        tx, ty = a * np.cos(phi), np.sign(s) * b * np.sin(phi)
        norm = np.hypot(tx, ty)
        return tx / norm, ty / norm

    def arch_locate(
        self, x_mm: float | np.ndarray, y_mm: float | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (s, d) of patient points: arc length of the nearest arch point and the
        signed distance from it, positive outside the arch (buccal)."""
        x, y = np.broadcast_arrays(np.asarray(x_mm, np.float64), np.asarray(y_mm, np.float64))
        ax, a, b, back = np.abs(x), self.arch_half_width_mm, self.arch_depth_mm, self.arch_back_y_mm
        phi = np.clip(np.arctan2(ax / a, (back - y) / b), 0.0, math.pi / 2)
        for _ in range(6):  # Newton on the distance to the ellipse
            sp, cp = np.sin(phi), np.cos(phi)
            ex, ey = a * sp - ax, back - b * cp - y
            g = ex * a * cp + ey * b * sp
            h = a * a * cp * cp - ex * a * sp + b * b * sp * sp + ey * b * cp
            phi = np.clip(phi - g / np.where(np.abs(h) < 1e-9, 1e-9, h), 0.0, math.pi / 2)
        phi_t, arc_t = self._ellipse_table
        s = np.interp(phi, phi_t, arc_t)
        sp, cp = np.sin(phi), np.cos(phi)
        nx, ny = b * sp, -a * cp  # outward normal of the ellipse (unnormalised)
        norm = np.hypot(nx, ny)
        d = ((ax - a * sp) * nx + (y - back + b * cp) * ny) / norm
        straight = y > back  # behind the ellipse: the straight part
        s = np.where(straight, arc_t[-1] + (y - back), s)
        d = np.where(straight, ax - a, d)
        return np.sign(x) * s, d

    # ------------------------------------------------------------ teeth and canals

    @cached_property
    def teeth(self) -> tuple[Tooth, ...]:
        """Return the 28 teeth, upper then lower, each from the patient's right to left."""
        out = []
        for upper, table in ((True, UPPER_TEETH), (False, LOWER_TEETH)):
            centres, at = [], INTERDENTAL_GAP_MM / 2
            for row in table:
                centres.append(at + row[1] / 2)
                at += row[1] + INTERDENTAL_GAP_MM
            half = self.bite_gap_mm / 2
            occlusal = self.occlusal_z_mm + (half if upper else -half)
            quadrants = (1, 2) if upper else (4, 3)
            for side, quadrant in ((-1, quadrants[0]), (1, quadrants[1])):
                order = range(len(table) - 1, -1, -1) if side < 0 else range(len(table))
                for k in order:
                    position, md, bl, crown, root = table[k]
                    s = side * centres[k]
                    (x,), (y,) = (np.atleast_1d(v) for v in self.arch_point(s))
                    (tx,), (ty,) = (np.atleast_1d(v) for v in self.arch_tangent(s))
                    out.append(
                        Tooth(quadrant * 10 + position, upper, float(s), float(x), float(y),
                              md, bl, crown, root, occlusal, (float(tx), float(ty)))
                    )  # fmt: skip
        return tuple(out)

    def tooth(self, number: int) -> Tooth:
        """Return the tooth with this FDI number."""
        return next(t for t in self.teeth if t.number == number)

    def tooth_pixels(self) -> list[tuple[float, float]]:
        """Return (row, col) of each tooth axis, in the order of teeth."""
        return [self.patient_to_pixel(t.x_mm, t.y_mm) for t in self.teeth]

    @property
    def lower_crest_z_mm(self) -> float:
        """Return z of the mandible's alveolar crest between the teeth."""
        return self.occlusal_z_mm - self.bite_gap_mm / 2 - 9.5

    @property
    def mandible_floor_z_mm(self) -> float:
        """Return z of the mandible's lower border under the teeth."""
        return self.occlusal_z_mm - 33.0

    @property
    def upper_crest_z_mm(self) -> float:
        """Return z of the maxilla's alveolar crest between the teeth."""
        return self.occlusal_z_mm + self.bite_gap_mm / 2 + 10.0

    @property
    def body_end_mm(self) -> float:
        """Return |s| where the mandible's body (with teeth) turns into the ramus."""
        last = self.tooth(47)
        return abs(last.s_mm) + last.mesiodistal_mm / 2 + 4.0

    @property
    def ramus_end_mm(self) -> float:
        """Return |s| of the back edge of the ramus."""
        return self.body_end_mm + 30.0

    def canal_nodes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (|s|, d, z) nodes of a mandibular canal, from the mental foramen backwards.

        It enters the ramus at the mandibular foramen, runs down under the molar roots and
        forward to the mental foramen between the premolars, where it turns to the cheek.
        """
        occ = self.occlusal_z_mm
        pm1, pm2, m1 = self.tooth(44), self.tooth(45), self.tooth(46)
        mental = (abs(pm1.s_mm) + abs(pm2.s_mm)) / 2
        s = np.array([mental, mental + 3.0, abs(m1.s_mm), self.body_end_mm, self.body_end_mm + 15])
        d = np.array([5.0, 1.0, -1.0, -0.5, 0.0])
        z = np.array([occ - 21.0, occ - 24.0, occ - 25.0, occ - 22.0, occ - 6.0])
        return s, d, z

    def canal_at(self, s_mm: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (d, z) of the canal centre at arc lengths s (either side; NaN off its span)."""
        nodes_s, nodes_d, nodes_z = self.canal_nodes()
        along = np.abs(np.asarray(s_mm, dtype=np.float64))
        # Cubic Hermite with zero end slopes: smooth bends through every node.
        k = np.clip(np.searchsorted(nodes_s, along) - 1, 0, len(nodes_s) - 2)
        t = np.clip((along - nodes_s[k]) / (nodes_s[k + 1] - nodes_s[k]), 0.0, 1.0)
        ease = t * t * (3 - 2 * t)
        d = nodes_d[k] + (nodes_d[k + 1] - nodes_d[k]) * ease
        z = nodes_z[k] + (nodes_z[k + 1] - nodes_z[k]) * ease
        off = (along < nodes_s[0]) | (along > nodes_s[-1])
        return np.where(off, np.nan, d), np.where(off, np.nan, z)

    def arch_normal(self, s_mm: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return unit (x, y) across the arch at s, pointing buccal (outwards)."""
        tx, ty = self.arch_tangent(s_mm)
        return ty, -tx

    def canal_points_mm(self, side: int, step_mm: float = 1.0) -> np.ndarray:
        """Return (x, y, z) points along one canal (side -1: the patient's right)."""
        nodes_s = self.canal_nodes()[0]
        s = np.arange(nodes_s[0], nodes_s[-1] + 1e-9, step_mm) * side
        d, z = self.canal_at(s)
        x, y = self.arch_point(s)
        tx, ty = self.arch_tangent(s)
        nx, ny = ty, -tx  # the buccal normal
        return np.stack([x + d * nx, y + d * ny, z], axis=1)
