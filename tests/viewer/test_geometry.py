"""Reformats follow the patient coordinate system, whatever the slice orientation and order."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from portal.ingest import ingest_files
from portal.models import Series
from tests.base import BaseTestCase
from tests.dicom_samples import enhanced_ct, identify, sample, to_bytes
from viewer import mpr

ROWS, COLS = 8, 6


def _slices(orientation: list[float], zs: list[float], *, shift: float = 0.0) -> dict[str, bytes]:
    """CT slices at heights zs; every voxel of slice k holds 100 * k, so a cut shows the order."""
    files = {}
    for k, z in enumerate(zs):
        ds = identify(sample("CT_small.dcm"), 1, study="7")
        ds.SOPInstanceUID = f"{ds.SeriesInstanceUID}.{k + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.Rows, ds.Columns = ROWS, COLS
        ds.PixelData = np.full((ROWS, COLS), 1024 + 100 * k, np.int16).tobytes()
        ds.ImageOrientationPatient = orientation
        ds.ImagePositionPatient = [shift * k, 0.0, z]
        ds.PixelSpacing = [0.5, 0.5]
        ds.InstanceNumber = k + 1
        ds.WindowCenter, ds.WindowWidth = 1024 / 2 + 100, 2048
        files[f"IM{k}.dcm"] = to_bytes(ds)
    return files


class GeometryTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        self.login(self.alice)

    def ingest(self, files: dict[str, bytes]) -> Series:
        with self.captureOnCommitCallbacks(execute=False):
            report = ingest_files(
                [(n, io.BytesIO(d)) for n, d in files.items()], practice=self.practice
            )
        self.assertEqual(report.rejected, 0, report.lines())
        return Series.objects.exclude(study=self.study).get()

    def column(self, series: Series, plane: str) -> list[int]:
        url = f"/viewer/series/{series.code}/{plane}/2.png?c=100&w=1000"
        r = self.client.get(url)
        self.assertEqual(r.status_code, 200, r.content[:200])
        return [int(v) for v in np.asarray(Image.open(io.BytesIO(r.content)))[:, 0]]

    def test_head_first_reformats_put_the_head_at_the_top(self) -> None:
        series = self.ingest(_slices([1, 0, 0, 0, 1, 0], [0.0, 2.0, 4.0, 6.0]))
        for plane in ("coronal", "sagittal"):
            column = self.column(series, plane)
            self.assertGreater(column[0], column[-1], plane)  # top = highest z = brightest

    def test_a_normal_to_the_feet_does_not_turn_reformats_upside_down(self) -> None:
        # Row direction -x: the slice normal (row x column) points to the feet.
        series = self.ingest(_slices([-1, 0, 0, 0, 1, 0], [0.0, 2.0, 4.0, 6.0]))
        for plane in ("coronal", "sagittal"):
            column = self.column(series, plane)
            self.assertGreater(column[0], column[-1], plane)

    def test_edge_letters_come_from_the_orientation(self) -> None:
        for orientation, axial in (
            ([1, 0, 0, 0, 1, 0], {"right": "L", "bottom": "P"}),
            ([-1, 0, 0, 0, 1, 0], {"right": "R", "bottom": "P"}),
            ([0.7071, 0.7071, 0, 0, 0, -1], {"right": "LP", "bottom": "I"}),
        ):
            with self.subTest(orientation=orientation):
                Series.objects.exclude(study=self.study).delete()
                series = self.ingest(_slices(orientation, [0.0, 2.0, 4.0, 6.0]))
                manifest = self.client.get(f"/viewer/series/{series.code}/manifest.json").json()
                self.assertEqual(manifest["planes"]["axial"]["labels"], axial)
                if orientation[5] == 0:  # an axial stack: reformats have the feet at the bottom
                    self.assertEqual(manifest["planes"]["coronal"]["labels"]["bottom"], "I")

    def test_uneven_spacing_is_not_reformatted_silently(self) -> None:
        series = self.ingest(_slices([1, 0, 0, 0, 1, 0], [0.0, 2.0, 4.0, 9.0, 11.0]))
        manifest = self.client.get(f"/viewer/series/{series.code}/manifest.json").json()
        self.assertNotIn("coronal", manifest["planes"])
        self.assertIn("unevenly spaced", manifest["reformat_note"])

    def test_gantry_tilt_is_not_reformatted_silently(self) -> None:
        series = self.ingest(_slices([1, 0, 0, 0, 1, 0], [0.0, 2.0, 4.0, 6.0], shift=1.5))
        manifest = self.client.get(f"/viewer/series/{series.code}/manifest.json").json()
        self.assertNotIn("coronal", manifest["planes"])
        self.assertIn("tilt", manifest["reformat_note"])

    def test_an_enhanced_ct_is_a_volume_sorted_by_frame_position(self) -> None:
        ds = identify(enhanced_ct(frames=4), 1, study="7")
        # Frames stored feet-last: the frame order is not the spatial order.
        for item, z in zip(ds.PerFrameFunctionalGroupsSequence, [6.0, 0.0, 4.0, 2.0], strict=True):
            item.PlanePositionSequence[0].ImagePositionPatient = [0, 0, z]
        series = self.ingest({"enh.dcm": to_bytes(ds)})
        manifest = self.client.get(f"/viewer/series/{series.code}/manifest.json").json()
        self.assertEqual(manifest["kind"], "volume")
        self.assertAlmostEqual(manifest["slice_spacing"], 2.0)
        firsts = []
        for index in range(4):
            r = self.client.get(f"/viewer/series/{series.code}/axial/{index}.png?c=0&w=4000")
            firsts.append(int(np.asarray(Image.open(io.BytesIO(r.content)))[0, 0]))
        # Frame k holds 50 * k more than frame 0; by z the frames come as 1, 3, 2, 0.
        by_frame = sorted(firsts)
        self.assertEqual(firsts, [by_frame[1], by_frame[3], by_frame[2], by_frame[0]])
        self.assertEqual(len(set(firsts)), 4)
