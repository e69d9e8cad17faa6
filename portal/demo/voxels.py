"""Voxels of the phantom dental CBCT, one axial slice at a time, in Hounsfield-like units.

Everything that does not change from slice to slice (which pixels lie near the arch, their
arch coordinates, each tooth's local frame, the sinuses' boxes) is computed once, so a slice
costs a few array operations on small pixel sets; 300 slices of 512x512 take well under a
second.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from portal.demo.anatomy import ROOT_TRUNK_MM, PhantomGeometry, Tooth

HU_AIR = -1000
HU_FAT = -90
HU_SKIN = 30
HU_SOFT_TISSUE = 40
HU_SKULL = 1000
HU_JAW_CORTEX = 1500
HU_JAW_TRABECULAR = 450
HU_MAXILLA_CORTEX = 1250
HU_MAXILLA_TRABECULAR = 380
HU_PALATE = 1100
HU_THIN_BONE = 800
HU_VERTEBRA_CORTEX = 1100
HU_VERTEBRA = 300
HU_CANAL_WALL = 1000
HU_DENTIN = 2100
HU_PULP = 50
HU_ENAMEL = 2900
HU_MARKER = 3000
RESCALE_INTERCEPT = -1024
HU_MAX = 3071
NOISE_HU = 30.0
_NOISE_POOL = 4
ENAMEL_MM = 1.1
_BAND_MM = 7.5  # how far across the arch the jaws reach


def _rows_cols(g: PhantomGeometry) -> tuple[np.ndarray, np.ndarray]:
    ps = g.pixel_spacing_mm
    x0, y0 = g.origin_mm()
    return (
        (y0 + np.arange(g.rows, dtype=np.float64) * ps)[:, None],
        (x0 + np.arange(g.columns, dtype=np.float64) * ps)[None, :],
    )


class _Box:
    """A rectangle of the slice and patient coordinates relative to a centre inside it."""

    def __init__(self, g: PhantomGeometry, x: float, y: float, half_mm: float) -> None:
        (r0, c0), (r1, c1) = (g.patient_to_pixel(x - half_mm, y - half_mm),
                              g.patient_to_pixel(x + half_mm, y + half_mm))  # fmt: skip
        self.rows = slice(max(0, math.floor(r0)), min(g.rows, math.ceil(r1) + 1))
        self.cols = slice(max(0, math.floor(c0)), min(g.columns, math.ceil(c1) + 1))
        ys, xs = _rows_cols(g)
        self.dx = (xs[:, self.cols] - x).astype(np.float32)
        self.dy = (ys[self.rows, :] - y).astype(np.float32)
        self.empty = self.dx.size == 0 or self.dy.size == 0


class _ToothFrame:
    def __init__(self, g: PhantomGeometry, tooth: Tooth) -> None:
        self.tooth = tooth
        box = _Box(g, tooth.x_mm, tooth.y_mm, max(tooth.mesiodistal_mm, tooth.buccolingual_mm))
        tx, ty = tooth.tangent
        self.box = box
        self.u = box.dx * tx + box.dy * ty  # mesio-distal, towards the patient's left
        self.v = box.dx * ty - box.dy * tx  # bucco-lingual, buccal positive
        self.u2, self.v2 = self.u**2, self.v**2


def _width(h: float, tooth: Tooth) -> float:
    """Return the tooth's width at depth h below its biting surface, as a fraction."""
    crown, length = tooth.crown_mm, tooth.length_mm
    if h < 1.2:  # the rounded edge of the biting surface
        return 0.6 + 0.4 * math.sqrt(h / 1.2)
    if h < crown:  # widest just below the cusps, narrowing to the neck
        return 1.0 - 0.22 * ((h - 1.2) / (crown - 1.2)) ** 2
    if h < length - 1.0:  # the root tapers
        return 0.72 - 0.42 * (h - crown) / (length - 1.0 - crown)
    return 0.3 * math.sqrt(max(0.0, length - h))  # a rounded root tip


class Scene:
    """The slice-independent parts of the phantom, computed once per geometry."""

    def __init__(self, g: PhantomGeometry) -> None:
        self.g = g
        ys, xs = _rows_cols(g)
        ax, ay, _ = g.head_semi_axes_mm
        self.steps = 4096
        radius = np.sqrt((xs / ax) ** 2 + (ys / ay) ** 2)
        self.radius_q = np.minimum(radius * self.steps, 2 * self.steps).astype(np.uint16)
        occ = g.occlusal_z_mm
        x, y = np.broadcast_arrays(xs, ys)
        s, d = g.arch_locate(x, y)
        s, d = s.ravel(), d.ravel()
        flat = np.arange(s.size)
        abs_s = np.abs(s)
        near = (np.abs(d) < _BAND_MM) & (abs_s <= g.ramus_end_mm)
        self.band = flat[near]
        self.band_d = np.abs(d[near]).astype(np.float32)
        band_s = abs_s[near]
        # Mandible: body under the teeth, then the ramus rising behind them.
        back = np.clip((band_s - g.body_end_mm) / 8.0, 0.0, 1.0)
        behind = np.maximum(band_s - g.body_end_mm, 0.0)
        self.low = (g.mandible_floor_z_mm + 0.55 * behind).astype(np.float32)
        top = g.lower_crest_z_mm + back * (occ + 18.0 - g.lower_crest_z_mm)
        self.inv_height = (1.0 / (top - self.low)).astype(np.float32)
        self.top = top.astype(np.float32)
        self.w_base = (6.0 - 2.2 * back).astype(np.float32)
        self.w_slope = ((4.2 - 0.9 * back) - (6.0 - 2.2 * back)).astype(np.float32)
        end = abs(g.tooth(17).s_mm) + g.tooth(17).mesiodistal_mm / 2 + 5.0
        self.maxilla_end = np.sqrt(np.clip((end - band_s) / 4.0, 0.0, 1.0)).astype(np.float32)
        canal_d, canal_z = g.canal_at(band_s)
        has_canal = ~np.isnan(canal_z)
        self.canal = np.flatnonzero(has_canal)
        self.canal_d = (d[near][has_canal] - canal_d[has_canal]).astype(np.float32)
        self.canal_z = canal_z[has_canal].astype(np.float32)
        inside = (d < -2.0) & (y.ravel() < g.arch_back_y_mm + 6.0)
        self.palate = flat[inside]
        self.mouth = flat[inside & (d < -5.0)]
        xr, yr = x.ravel(), y.ravel()
        self.nasal = flat[(np.abs(xr) < 11.0) & (yr > -34.0) & (yr < 16.0)]
        self.septum = flat[(np.abs(xr) < 0.7) & (yr > -34.0) & (yr < 8.0)]
        self.pharynx = flat[(xr / 9.0) ** 2 + ((yr - 13.0) / 6.0) ** 2 <= 1.0]
        spine = np.hypot(xr, yr - 31.0)
        self.spine_cortex = flat[(spine <= 9.0) & (spine > 7.8)]
        self.spine = flat[spine <= 7.8]
        self.sinuses = [_Box(g, side * 24.0, -12.0, 17.0) for side in (-1, 1)]
        self.teeth = [_ToothFrame(g, t) for t in g.teeth]
        self.x, self.y = xs.astype(np.float32), ys.astype(np.float32)

    def head_lut(self, z: float) -> np.ndarray:
        """Return HU by quantised normalised radius for this slice's cut through the head."""
        g, steps = self.g, self.steps
        u = (z - g.head_center_z_mm) / g.head_semi_axes_mm[2]
        s = math.sqrt(max(0.0, 1.0 - u * u))
        lut = np.full(2 * steps + 1, HU_AIR, dtype=np.int16)
        outer = int(s * steps)
        if outer == 0:
            return lut
        lut[: outer + 1] = HU_SKIN
        lut[: int(s * 0.985 * steps)] = HU_FAT
        lut[: int(s * 0.93 * steps)] = HU_SOFT_TISSUE
        if z > g.occlusal_z_mm + 45.0:  # the cranium
            inner, outer_bone = g.skull_inner_fraction, g.skull_outer_fraction
            lut[int(s * inner * steps) : int(s * outer_bone * steps) + 1] = HU_SKULL
        return lut

    def paint(self, img: np.ndarray, z: float) -> None:
        """Draw everything but noise and markers onto one slice at patient z."""
        g, flat, occ = self.g, img.reshape(-1), self.g.occlusal_z_mm
        if z < occ + 19.0:
            flat[self.pharynx] = HU_AIR
        else:
            flat[self.nasal] = HU_AIR
            flat[self.septum] = HU_THIN_BONE
        if z < occ + 6.0:
            flat[self.spine_cortex] = HU_VERTEBRA_CORTEX
            flat[self.spine] = HU_VERTEBRA
        if occ + 16.0 <= z < occ + 19.0:
            flat[self.palate] = HU_PALATE
        elif occ + 13.5 <= z < occ + 16.0:
            flat[self.mouth] = HU_AIR
        if g.upper_crest_z_mm <= z < occ + 28.0:
            self._maxilla(flat, z)
        if z <= occ + 18.0:
            self._mandible(flat, z)
        for side in self.sinuses:
            self._sinus(img, side, z)
        for frame in self.teeth:
            self._tooth(img, frame, z)

    def _maxilla(self, flat: np.ndarray, z: float) -> None:
        crest = self.g.upper_crest_z_mm
        u = (z - crest) / (self.g.occlusal_z_mm + 28.0 - crest)
        w = (4.2 + 2.8 * u) * math.sqrt(min(1.0, (z - crest) / 1.2)) * self.maxilla_end
        bone = self.band_d <= w
        flat[self.band[bone]] = HU_MAXILLA_CORTEX
        if z - crest >= 1.4:
            flat[self.band[self.band_d <= w - 1.4]] = HU_MAXILLA_TRABECULAR

    def _mandible(self, flat: np.ndarray, z: float) -> None:
        u = (z - self.low) * self.inv_height
        inside = (u >= 0) & (u <= 1)
        if not inside.any():
            return
        edge = 2 * u - 1
        edge *= edge
        edge *= edge  # (2u - 1)^4, squared below: a rounded top and bottom
        w = (self.w_base + self.w_slope * u) * np.sqrt(np.maximum(0, 1 - edge * edge))
        bone = inside & (self.band_d <= w)
        flat[self.band[bone]] = HU_JAW_CORTEX
        core = bone & (self.band_d <= w - 1.8) & (z - self.low >= 2.0) & (self.top - z >= 0.8)
        flat[self.band[core]] = HU_JAW_TRABECULAR
        r = self.g.canal_radius_mm
        dist2 = self.canal_d**2 + (z - self.canal_z) ** 2
        wall = self.canal[(dist2 <= (r + 0.5) ** 2) & core[self.canal]]
        flat[self.band[wall]] = HU_CANAL_WALL
        flat[self.band[self.canal[(dist2 <= r * r) & bone[self.canal]]]] = HU_SOFT_TISSUE

    def _sinus(self, img: np.ndarray, box: _Box, z: float) -> None:
        zc, semi = self.g.occlusal_z_mm + 36.0, (11.0, 15.0, 14.0)
        dz = z - zc
        if box.empty or abs(dz) > semi[2] + 1.0:
            return
        e_out = (box.dx / (semi[0] + 1)) ** 2 + (box.dy / (semi[1] + 1)) ** 2
        e_in = (box.dx / semi[0]) ** 2 + (box.dy / semi[1]) ** 2
        view = img[box.rows, box.cols]
        view[e_out <= 1 - (dz / (semi[2] + 1)) ** 2] = HU_THIN_BONE
        if abs(dz) < semi[2]:
            view[e_in <= 1 - (dz / semi[2]) ** 2] = HU_AIR

    def _tooth(self, img: np.ndarray, frame: _ToothFrame, z: float) -> None:
        t = frame.tooth
        h = (z - t.occlusal_z_mm) if t.upper else (t.occlusal_z_mm - z)
        if frame.box.empty or not 0 <= h <= t.length_mm:
            return
        f = _width(h, t)
        a, b = t.mesiodistal_mm / 2 * f, t.buccolingual_mm / 2 * f
        if a <= 0 or b <= 0:
            return
        view = img[frame.box.rows, frame.box.cols]
        u2, v2 = frame.u2, frame.v2
        outline = u2 / (a * a) + v2 / (b * b) <= 1
        if h < t.crown_mm:
            view[outline] = HU_ENAMEL
            e = ENAMEL_MM
            if h > 1.3 and a > e and b > e:
                view[u2 / (a - e) ** 2 + v2 / (b - e) ** 2 <= 1] = HU_DENTIN
        elif len(t.roots) > 1 and h > t.crown_mm + ROOT_TRUNK_MM:
            self._roots(view, frame, h, f)
            return
        else:
            view[outline] = HU_DENTIN
        if 2.8 < h < t.length_mm - 1.0:
            p = 0.3 if h < t.crown_mm + 2.0 else 0.18
            view[u2 / (p * a) ** 2 + v2 / (p * b) ** 2 <= 1] = HU_PULP

    @staticmethod
    def _roots(view: np.ndarray, frame: _ToothFrame, h: float, f: float) -> None:
        """Draw the separate roots of a molar, spreading slightly towards their tips."""
        t = frame.tooth
        split = t.crown_mm + ROOT_TRUNK_MM
        spread = 1.0 + 0.35 * (h - split) / max(t.length_mm - split, 1e-6)
        half_md, half_bl = t.mesiodistal_mm / 2, t.buccolingual_mm / 2
        for du, dv, sa, sb in t.roots:
            u2 = (frame.u - du * t.mesiodistal_mm * spread) ** 2
            v2 = (frame.v - dv * t.buccolingual_mm * spread) ** 2
            a, b = sa * half_md * f, sb * half_bl * f
            view[u2 / (a * a) + v2 / (b * b) <= 1] = HU_DENTIN
            if h < t.length_mm - 1.0:
                view[u2 / (0.2 * a) ** 2 + v2 / (0.2 * b) ** 2 <= 1] = HU_PULP


def iter_slices_hu(g: PhantomGeometry, seed: int = 0) -> Iterator[np.ndarray]:
    """Yield each axial slice as int16 HU, one at a time, so memory stays at one slice."""
    scene = Scene(g)
    rng = np.random.default_rng(seed)
    shape = (g.rows, g.columns)
    pool = [_grain(rng, shape) for _ in range(_NOISE_POOL)]
    markers = g.marker_positions_mm()
    for k in range(g.slices):
        z = g.slice_z_mm(k)
        img = np.take(scene.head_lut(z), scene.radius_q)
        scene.paint(img, z)
        dz = z - markers[0][2]
        r2 = g.marker_radius_mm**2 - dz * dz
        if r2 > 0:
            for mx, my, _ in markers:
                img[(scene.x - mx) ** 2 + (scene.y - my) ** 2 <= r2] = HU_MARKER
        # A few noise fields rolled randomly per slice: CBCT-like grain at a fraction of the cost.
        noise = pool[int(rng.integers(_NOISE_POOL))]
        img += np.roll(noise, tuple(int(v) for v in rng.integers(0, shape)), axis=(0, 1))
        np.clip(img, RESCALE_INTERCEPT, HU_MAX, out=img)
        yield img


def _grain(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Return int16 noise of NOISE_HU standard deviation, correlated over a few pixels."""
    white = rng.standard_normal(shape, dtype=np.float32)
    smooth = sum(np.roll(white, (dr, dc), axis=(0, 1)) for dr in (-1, 0, 1) for dc in (-1, 0, 1))
    return np.rint(smooth / 3.0 * NOISE_HU).astype(np.int16)
