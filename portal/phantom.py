"""Synthetic dental CBCT studies, photos and reports with known geometry, for demos and tests."""

from __future__ import annotations

import hashlib
import io
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
)

HU_AIR = -1000
HU_SOFT_TISSUE = 40
HU_SKULL = 1000
HU_JAW_CORTEX = 1400
HU_JAW_TRABECULAR = 500
HU_DENTIN = 2200
HU_PULP = 60
HU_ENAMEL = 2800
HU_MARKER = 3000
RESCALE_INTERCEPT = -1024
_HU_MAX = 3071
_NOISE_HU = 12.0
_NOISE_POOL = 4
_UID_NAMESPACE = uuid.UUID("5f0c7a52-3d55-4b7e-9a51-2f1d8d3c6e10")
# Tooth radii (mm) from the midline back: incisors, canine, premolars, molars.
_TOOTH_RADII_MM = (2.2, 2.2, 2.6, 2.8, 2.8, 3.8, 3.8)


@dataclass(frozen=True)
class PhantomGeometry:
    """Describe the phantom so tests can predict where each feature lands in the images."""

    slices: int = 300
    rows: int = 512
    columns: int = 512
    pixel_spacing_mm: float = 0.3
    slice_thickness_mm: float = 0.3
    first_slice_z_mm: float = -45.0
    # Head: ellipsoid in patient mm (LPS: +x patient left, +y posterior, +z superior).
    head_semi_axes_mm: tuple[float, float, float] = (70.0, 75.0, 130.0)
    head_center_z_mm: float = 30.0
    skull_inner_fraction: float = 0.90
    skull_outer_fraction: float = 0.965
    # Mandibular arch: half-ellipse opening posteriorly, teeth along it.
    arch_center_y_mm: float = -10.0
    arch_semi_axes_mm: tuple[float, float] = (28.0, 40.0)
    jaw_half_width_mm: float = 6.0
    tooth_count: int = 14
    jaw_first_slice: int = 20
    tooth_first_slice: int = 60
    crown_first_slice: int = 110
    tooth_end_slice: int = 140
    airway_center_y_mm: float = 15.0
    airway_radius_mm: float = 8.0
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
        if self.tooth_count % 2 or not 2 <= self.tooth_count <= 2 * len(_TOOTH_RADII_MM):
            raise ValueError("tooth_count must be even and between 2 and 14")
        if not self.tooth_first_slice <= self.crown_first_slice <= self.tooth_end_slice:
            raise ValueError("tooth slices must satisfy first <= crown <= end")
        for row, col in self.marker_pixels():
            if not (0 <= row < self.rows and 0 <= col < self.columns):
                raise ValueError("markers must lie inside the image")

    @property
    def tooth_slices(self) -> range:
        """Return the slice indices that cut through teeth (roots, then crowns)."""
        return range(self.tooth_first_slice, min(self.tooth_end_slice, self.slices))

    @property
    def crown_slices(self) -> range:
        """Return the slice indices that cut through enamel crowns."""
        return range(self.crown_first_slice, min(self.tooth_end_slice, self.slices))

    def origin_mm(self) -> tuple[float, float]:
        """Return patient (x, y) of the centre of pixel (0, 0), which centres the image on 0."""
        ps = self.pixel_spacing_mm
        return (round(-(self.columns - 1) / 2 * ps, 6), round(-(self.rows - 1) / 2 * ps, 6))

    def slice_z_mm(self, index: int) -> float:
        """Return the patient z of a slice; it grows by slice thickness per index."""
        return self.first_slice_z_mm + index * self.slice_thickness_mm

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

    def teeth_mm(self) -> list[tuple[float, float, float]]:
        """Return (x, y, radius) of each tooth axis in patient mm, from patient right to left."""
        half = self.tooth_count // 2
        radii = _TOOTH_RADII_MM[:half]
        radii = tuple(reversed(radii)) + radii
        a, b = self.arch_semi_axes_mm
        angles = np.linspace(-84.0, 84.0, self.tooth_count) if self.tooth_count > 1 else [0.0]
        teeth = []
        for angle, radius in zip(angles, radii, strict=True):
            t = math.radians(float(angle))
            teeth.append((a * math.sin(t), self.arch_center_y_mm - b * math.cos(t), radius))
        return teeth

    def tooth_pixels(self) -> list[tuple[float, float]]:
        """Return (row, col) of each tooth axis."""
        return [self.patient_to_pixel(x, y) for x, y, _ in self.teeth_mm()]


class _Masks:
    """Precompute the slice-independent 2D maps once so each slice costs a few array ops."""

    def __init__(self, g: PhantomGeometry) -> None:
        ps = g.pixel_spacing_mm
        x0, y0 = g.origin_mm()
        x = (x0 + np.arange(g.columns, dtype=np.float32) * ps)[None, :]
        y = (y0 + np.arange(g.rows, dtype=np.float32) * ps)[:, None]
        ax, ay, _ = g.head_semi_axes_mm
        # Normalised head radius quantised for a lookup table: one take() per slice.
        self.steps = 4096
        radius = np.sqrt((x / ax) ** 2 + (y / ay) ** 2)
        self.radius_q = np.minimum(radius * self.steps, 2 * self.steps).astype(np.uint16)
        self.airway = _flat((x**2 + (y - g.airway_center_y_mm) ** 2) <= g.airway_radius_mm**2)
        a, b = g.arch_semi_axes_mm
        w = g.jaw_half_width_mm
        dy = y - g.arch_center_y_mm

        def ellipse(grow: float) -> np.ndarray:
            return (x / (a + grow)) ** 2 + (dy / (b + grow)) ** 2 <= 1.0

        front = dy <= 2.0
        band = ellipse(w) & ~ellipse(-w) & front
        core = ellipse(w - 1.2) & ~ellipse(-w + 1.2) & front
        self.jaw_cortex = _flat(band & ~core)
        self.jaw_trabecular = _flat(core)
        crown = np.zeros((g.rows, g.columns), dtype=bool)
        root = np.zeros_like(crown)
        pulp = np.zeros_like(crown)
        for tx, ty, r in g.teeth_mm():
            d2 = (x - tx) ** 2 + (y - ty) ** 2
            crown |= d2 <= r**2
            root |= d2 <= (0.75 * r) ** 2
            pulp |= d2 <= (0.25 * r) ** 2
        self.crown = _flat(crown)
        self.root = _flat(root & ~pulp)
        self.pulp = _flat(pulp)
        self.x, self.y = x, y


def _flat(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask)


def _head_lut(g: PhantomGeometry, steps: int, index: int) -> np.ndarray:
    """Return HU by quantised normalised radius for this slice's cut through the ellipsoid."""
    c = g.head_semi_axes_mm[2]
    u = (g.slice_z_mm(index) - g.head_center_z_mm) / c
    s = math.sqrt(max(0.0, 1.0 - u * u))
    lut = np.full(2 * steps + 1, HU_AIR, dtype=np.int16)
    outer = int(s * steps)
    lut[: outer + 1] = HU_SOFT_TISSUE
    lut[int(s * g.skull_inner_fraction * steps) : int(s * g.skull_outer_fraction * steps) + 1] = (
        HU_SKULL
    )
    if outer == 0:
        lut[0] = HU_AIR
    return lut


def iter_slices_hu(g: PhantomGeometry, seed: int = 0) -> Iterator[np.ndarray]:
    """Yield each axial slice as int16 HU, one at a time, so memory stays at one slice."""
    m = _Masks(g)
    rng = np.random.default_rng(seed)
    shape = (g.rows, g.columns)
    # A few noise fields rolled randomly per slice: realistic grain at a fraction of the cost.
    pool = [
        np.rint(rng.standard_normal(shape, dtype=np.float32) * _NOISE_HU).astype(np.int16)
        for _ in range(_NOISE_POOL)
    ]
    markers = g.marker_positions_mm()
    for k in range(g.slices):
        img = np.take(_head_lut(g, m.steps, k), m.radius_q)
        flat = img.reshape(-1)
        flat[m.airway] = HU_AIR
        if g.jaw_first_slice <= k < g.crown_first_slice:
            flat[m.jaw_cortex] = HU_JAW_CORTEX
            flat[m.jaw_trabecular] = HU_JAW_TRABECULAR
        if g.tooth_first_slice <= k < g.crown_first_slice:
            flat[m.root] = HU_DENTIN
            flat[m.pulp] = HU_PULP
        elif g.crown_first_slice <= k < g.tooth_end_slice:
            flat[m.crown] = HU_ENAMEL
        dz = g.slice_z_mm(k) - markers[0][2]
        r2 = g.marker_radius_mm**2 - dz * dz
        if r2 > 0:
            for mx, my, _ in markers:
                img[(m.x - mx) ** 2 + (m.y - my) ** 2 <= r2] = HU_MARKER
        noise = pool[int(rng.integers(_NOISE_POOL))]
        img += np.roll(noise, tuple(int(v) for v in rng.integers(0, shape)), axis=(0, 1))
        np.clip(img, RESCALE_INTERCEPT, _HU_MAX, out=img)
        yield img


def _da(value: date | str) -> str:
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    if len(value) != 8 or not value.isdigit():
        raise ValueError("dates must be datetime.date or YYYYMMDD")
    return value


def _uid(*parts: object) -> str:
    # A name-based UUID under 2.25: pydicom's generate_uid(prefix=None) ignores entropy_srcs.
    name = "\x1f".join(map(str, parts))
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}"


def iter_cbct_datasets(
    geometry: PhantomGeometry,
    *,
    patient_name: str,
    patient_id: str,
    birth_date: date | str,
    study_date: date | str,
    study_uid: str | None = None,
    series_uid: str | None = None,
    description: str = "CBCT",
    seed: int = 0,
) -> Iterator[Dataset]:
    """Yield one complete CT Image Storage file dataset per axial slice, inferior first."""
    g = geometry
    study_da, birth_da = _da(study_date), _da(birth_date)
    study_uid = study_uid or _uid("study", seed, patient_id, study_da, description)
    series_uid = series_uid or _uid("series", study_uid, seed)
    frame_uid = _uid("frame", series_uid)
    digest = hashlib.sha256(study_uid.encode()).hexdigest()
    accession = "PH" + str(int(digest[:12], 16) % 10**8).zfill(8)
    ps = g.pixel_spacing_mm
    for k, hu in enumerate(iter_slices_hu(g, seed)):
        sop_uid = _uid("instance", series_uid, k)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "PORTAL_PHANTOM"
        ds = Dataset()
        ds.file_meta = meta
        ds.preamble = b"\x00" * 128
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_da
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "093000"
        ds.AccessionNumber = accession
        ds.Modality = "CT"
        ds.Manufacturer = "Portal Phantom Works"
        ds.ManufacturerModelName = "Synthetic CBCT"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = description
        ds.SeriesDescription = f"{description} axial {ps:g} mm"
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.PatientBirthDate = birth_da
        ds.PatientSex = ""
        ds.BodyPartExamined = "JAW"
        ds.KVP = "90"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = accession[-6:]
        ds.SeriesNumber = 1
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = k + 1
        ds.PatientPosition = "HFS"
        ds.ImagePositionPatient = [round(v, 4) for v in g.image_position(k)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = round(g.slice_z_mm(k), 4)
        ds.SliceThickness = g.slice_thickness_mm
        ds.PixelSpacing = [ps, ps]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = g.rows, g.columns
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = RESCALE_INTERCEPT
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter = [500, 40]
        ds.WindowWidth = [3000, 400]
        ds.WindowCenterWidthExplanation = ["BONE", "SOFT TISSUE"]
        ds.BurnedInAnnotation = "NO"
        ds.LossyImageCompression = "00"
        hu -= RESCALE_INTERCEPT
        ds.PixelData = hu.astype("<i2", copy=False).tobytes()
        yield ds


def write_cbct(directory: Path, geometry: PhantomGeometry, **kwargs: object) -> list[Path]:
    """Write the phantom as IM0001.dcm, IM0002.dcm, ... one slice at a time."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(geometry.slices)))
    paths = []
    for k, ds in enumerate(iter_cbct_datasets(geometry, **kwargs), start=1):  # type: ignore[arg-type]
        path = directory / f"IM{k:0{width}d}.dcm"
        dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


def make_photo_jpeg(seed: int = 0, size: tuple[int, int] = (640, 480)) -> bytes:
    """Return a synthetic intraoral-looking JPEG photo: gums, a row of teeth, shadows."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    vignette = 1.0 - 0.55 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2) * 2
    base = np.array([170, 70, 80], dtype=np.float32) + rng.uniform(-15, 15, 3)
    rgb = np.clip(base[None, None, :] * vignette[..., None], 0, 255).astype(np.uint8)
    image = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((w * 0.05, h * 0.62, w * 0.95, h * 1.15), fill=(60, 15, 25))
    count = int(rng.integers(6, 9))
    tooth_w = w * 0.8 / count
    for i in range(count):
        left = w * 0.1 + i * tooth_w
        top = h * (0.25 + 0.06 * abs(i - (count - 1) / 2) / count) + rng.uniform(-5, 5)
        tint = float(rng.uniform(-14, 8))
        shade = (int(236 + tint), int(228 + tint), int(206 + tint * 1.5))
        draw.rounded_rectangle(
            (left + 3, top, left + tooth_w - 3, h * 0.68), radius=tooth_w / 3, fill=shade
        )
    image = image.filter(ImageFilter.GaussianBlur(2))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _pdf_text(line: str) -> str:
    raw = line.encode("cp1252", errors="replace").decode("latin-1")
    return raw.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_report_pdf(text_lines: list[str]) -> bytes:
    """Return a minimal valid one-page PDF showing text_lines in Helvetica."""
    ops = ["BT", "/F1 12 Tf", "16 TL", "56 780 Td"]
    for line in text_lines:
        ops.append(f"({_pdf_text(line)}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
