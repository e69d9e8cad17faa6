from __future__ import annotations

import io
import math
import re
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.filewriter import dcmwrite
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from portal.demo.phantom import (
    PhantomGeometry,
    iter_cbct_datasets,
    make_photo_jpeg,
    make_report_pdf,
    write_cbct,
)

KWARGS = {
    "patient_name": "Doe^Jane",
    "patient_id": "PH-001",
    "birth_date": "19800101",
    "study_date": "20240102",
}
GEOMETRY = PhantomGeometry()


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cbct")
    started = time.perf_counter()
    paths = write_cbct(directory, GEOMETRY, **KWARGS)
    print(f"\nwrote {len(paths)} slices in {time.perf_counter() - started:.2f} s")
    return directory


def _hu(directory: Path, index: int) -> np.ndarray:
    ds = pydicom.dcmread(directory / f"IM{index + 1:04d}.dcm")
    return pydicom.pixels.apply_rescale(ds.pixel_array, ds)


def _centroid(hu: np.ndarray, row: float, col: float, half: int = 8) -> tuple[float, float]:
    r0, c0 = round(row) - half, round(col) - half
    window = hu[r0 : r0 + 2 * half + 1, c0 : c0 + 2 * half + 1]
    rows, cols = np.nonzero(window >= 2000)
    return (r0 + rows.mean(), c0 + cols.mean())


class TestGeometry:
    def test_markers_are_marker_distance_apart(self) -> None:
        """The reported marker pixels are marker_distance_mm apart in patient space."""
        (ra, ca), (rb, cb) = GEOMETRY.marker_pixels()
        distance = math.hypot(ra - rb, ca - cb) * GEOMETRY.pixel_spacing_mm
        assert distance == pytest.approx(GEOMETRY.marker_distance_mm)

    def test_defaults_fit_a_dental_cbct(self) -> None:
        """The default volume is 300 slices of 512x512 at 0.3 mm with 28 teeth, jaws inside."""
        g = GEOMETRY
        assert (g.slices, g.rows, g.columns) == (300, 512, 512)
        assert (g.pixel_spacing_mm, g.slice_thickness_mm) == (0.3, 0.3)
        assert len(g.teeth) == 28
        assert g.marker_slice in range(g.slices)
        assert 0 < g.slice_of_z(g.mandible_floor_z_mm) < g.occlusal_slice < g.slices

    def test_it_rejects_markers_outside_the_volume(self) -> None:
        """A marker slice past the last slice is refused."""
        with pytest.raises(ValueError):
            PhantomGeometry(slices=50, marker_slice=60)


class TestDatasets:
    def test_it_writes_valid_ct_files(self, study_dir: Path) -> None:
        """Every file is Explicit VR Little Endian CT Image Storage with a DICM preamble."""
        paths = sorted(study_dir.glob("IM*.dcm"))
        assert [p.name for p in paths[:2]] == ["IM0001.dcm", "IM0002.dcm"]
        assert len(paths) == GEOMETRY.slices
        assert paths[0].read_bytes()[128:132] == b"DICM"
        ds = pydicom.dcmread(paths[0])
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.SOPClassUID == CTImageStorage
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert (ds.Modality, ds.PatientID, str(ds.PatientName)) == ("CT", "PH-001", "Doe^Jane")
        assert (ds.PatientBirthDate, ds.StudyDate) == ("19800101", "20240102")
        for keyword in ("Manufacturer", "StudyDescription", "SeriesDescription", "StudyID"):
            assert ds[keyword].value
        assert ds.AccessionNumber and ds.SeriesNumber == 1

    def test_pixels_are_signed_16_bit_hu(self, study_dir: Path) -> None:
        """Pixels decode as 512x512 int16 and rescale to HU with air near -1000."""
        ds = pydicom.dcmread(study_dir / "IM0001.dcm")
        assert (ds.BitsAllocated, ds.PixelRepresentation) == (16, 1)
        assert ds.PhotometricInterpretation == "MONOCHROME2"
        assert ds.pixel_array.dtype == np.int16
        assert ds.pixel_array.shape == (512, 512)
        hu = pydicom.pixels.apply_rescale(ds.pixel_array, ds)
        assert abs(float(hu[:20, :20].mean()) + 1000) < 10
        assert abs(float(hu[256, 380]) - 40) < 80

    def test_positions_step_by_slice_thickness(self, study_dir: Path) -> None:
        """ImagePositionPatient z grows by SliceThickness; x, y and orientation stay put."""
        headers = [
            pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(study_dir.glob("*.dcm"))
        ]
        z = np.array([float(h.ImagePositionPatient[2]) for h in headers])
        np.testing.assert_allclose(np.diff(z), GEOMETRY.slice_thickness_mm, atol=1e-3)
        for h in headers:
            assert [float(v) for v in h.ImagePositionPatient[:2]] == pytest.approx(
                GEOMETRY.origin_mm()
            )
        assert [h.InstanceNumber for h in headers] == list(range(1, GEOMETRY.slices + 1))
        assert {tuple(h.ImageOrientationPatient) for h in headers} == {(1, 0, 0, 0, 1, 0)}
        assert len({h.FrameOfReferenceUID for h in headers}) == 1
        assert len({h.SOPInstanceUID for h in headers}) == GEOMETRY.slices

    def test_it_round_trips_through_dcmwrite(self, tmp_path: Path) -> None:
        """A yielded dataset survives dcmwrite with enforce_file_format and dcmread intact."""
        ds = next(iter_cbct_datasets(PhantomGeometry(slices=3, marker_slice=1), **KWARGS))
        dcmwrite(tmp_path / "a.dcm", ds, enforce_file_format=True)
        back = pydicom.dcmread(tmp_path / "a.dcm")
        assert back.SOPInstanceUID == ds.SOPInstanceUID
        assert back.PixelData == ds.PixelData
        assert [float(v) for v in back.PixelSpacing] == [0.3, 0.3]

    def test_it_encodes_accented_names(self, tmp_path: Path) -> None:
        """Non-ASCII patient names survive a round trip."""
        kwargs = {**KWARGS, "patient_name": "Müller^Zoë"}
        ds = next(iter_cbct_datasets(PhantomGeometry(slices=1, marker_slice=0), **kwargs))
        dcmwrite(tmp_path / "a.dcm", ds, enforce_file_format=True)
        assert str(pydicom.dcmread(tmp_path / "a.dcm").PatientName) == "Müller^Zoë"


class TestUids:
    @staticmethod
    def _uids(**overrides: object) -> list[tuple[str, str, str]]:
        geometry = PhantomGeometry(slices=4, marker_slice=1)
        datasets = iter_cbct_datasets(geometry, **{**KWARGS, **overrides})  # type: ignore[arg-type]
        return [(d.StudyInstanceUID, d.SeriesInstanceUID, d.SOPInstanceUID) for d in datasets]

    def test_uids_are_valid_and_deterministic(self) -> None:
        """The same arguments give the same valid UIDs again."""
        first = self._uids()
        assert first == self._uids()
        for uid in {u for row in first for u in row}:
            assert pydicom.uid.UID(uid).is_valid

    def test_uids_change_with_seed_and_patient(self) -> None:
        """Another seed or patient gives another study, so demo studies never collide."""
        base = self._uids()[0][0]
        assert self._uids(seed=1)[0][0] != base
        assert self._uids(patient_id="PH-002")[0][0] != base

    def test_given_uids_are_used(self) -> None:
        """Explicit study and series UIDs are kept."""
        rows = self._uids(study_uid="1.2.3.4", series_uid="1.2.3.4.5")
        assert {(s, r) for s, r, _ in rows} == {("1.2.3.4", "1.2.3.4.5")}


class TestFeatures:
    def test_markers_are_where_the_geometry_says(self, study_dir: Path) -> None:
        """Both markers are dense and their measured centres are 40 mm apart within 0.5 %."""
        hu = _hu(study_dir, GEOMETRY.marker_slice)
        centres = []
        for row, col in GEOMETRY.marker_pixels():
            r, c = round(row), round(col)
            assert hu[r - 3 : r + 4, c - 3 : c + 4].max() >= 2500
            centres.append(_centroid(hu, row, col))
            assert math.hypot(centres[-1][0] - row, centres[-1][1] - col) < 0.5
        (ra, ca), (rb, cb) = centres
        distance = math.hypot(ra - rb, ca - cb) * GEOMETRY.pixel_spacing_mm
        assert distance == pytest.approx(GEOMETRY.marker_distance_mm, rel=0.005)

    def test_markers_are_small_spheres(self, study_dir: Path) -> None:
        """Ten slices away the markers are gone."""
        hu = _hu(study_dir, GEOMETRY.marker_slice + 10)
        for row, col in GEOMETRY.marker_pixels():
            r, c = round(row), round(col)
            assert hu[r - 8 : r + 9, c - 8 : c + 9].max() < 500

    def test_teeth_have_enamel_crowns_and_dentin_roots(self, study_dir: Path) -> None:
        """Each tooth axis shows enamel 1 mm into its crown, dentin mid-root, soft tissue
        at the bite gap between upper and lower teeth."""
        g = GEOMETRY
        for tooth, (row, col) in zip(g.teeth, g.tooth_pixels(), strict=True):
            r, c = round(row), round(col)
            into = 1 if tooth.upper else -1
            for z_mm, low, high in (
                (tooth.occlusal_z_mm + into * 1.0, 2500, 3200),
                (tooth.cej_z_mm + into * 2.0, 1800, 2400),
            ):
                hu = _hu(study_dir, round(g.slice_of_z(z_mm)))
                assert low <= hu[r - 4 : r + 5, c - 4 : c + 5].max() <= high, (tooth.number, z_mm)
        hu = _hu(study_dir, round(g.occlusal_slice))
        for row, col in g.tooth_pixels():
            assert hu[round(row), round(col)] < 500

    def test_skull_and_soft_tissue_are_present(self, study_dir: Path) -> None:
        """A horizontal line through the middle crosses air, skull and soft tissue."""
        line = _hu(study_dir, 200)[256]
        assert line[0] < -900
        assert (line > 800).sum() > 10
        assert (np.abs(line - 40) < 60).sum() > 200

    def test_generation_time(self) -> None:
        """300 slices generate in well under the budget (the figure is printed)."""
        started = time.perf_counter()
        count = sum(1 for _ in iter_cbct_datasets(GEOMETRY, **KWARGS))
        elapsed = time.perf_counter() - started
        print(f"\ngenerated {count} datasets in {elapsed:.2f} s")
        assert count == 300
        assert elapsed < 30


class TestAttachments:
    def test_photo_is_a_deterministic_jpeg(self) -> None:
        """The photo is a 640x480 JPEG that depends on the seed only."""
        data = make_photo_jpeg(3)
        image = Image.open(io.BytesIO(data))
        assert (image.format, image.size, image.mode) == ("JPEG", (640, 480), "RGB")
        assert data == make_photo_jpeg(3)
        assert data != make_photo_jpeg(4)

    def test_report_is_a_well_formed_pdf(self) -> None:
        """The PDF starts and ends right, its xref points at its objects, and text is escaped."""
        data = make_report_pdf(["Findings (none)", "Path C:\\x", "Café"])
        assert data.startswith(b"%PDF-") and data.endswith(b"%%EOF")
        assert b"(Findings \\(none\\)) Tj" in data
        assert b"(Path C:\\\\x) Tj" in data
        assert b"(Caf\xe9) Tj" in data
        startxref = int(re.search(rb"startxref\n(\d+)", data).group(1))
        assert data[startxref:].startswith(b"xref")
        offsets = re.findall(rb"(\d{10}) 00000 n", data)
        assert len(offsets) == 5
        for number, offset in enumerate(offsets, start=1):
            assert data[int(offset) :].startswith(b"%d 0 obj" % number)
