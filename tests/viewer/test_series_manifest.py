from __future__ import annotations

from audit.models import AccessEvent, Action
from portal import vault
from tests.base import BaseTestCase
from tests.viewer.helpers import (
    SMALL_DENTAL,
    make_dental_series,
    make_volume_series,
    truncate_pixels,
)
from viewer import arches, layouts, mpr
from viewer.dental.arch import enamel_profile


class SeriesManifestTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        self.series = self.study.series.get()
        self.url = f"/viewer/series/{self.series.code}/manifest.json"

    def test_it_describes_a_stack(self) -> None:
        self.login(self.alice)
        r = self.client.get(self.url)
        self.assertEqual(r.status_code, 200)
        self.assertIn("no-store", r["Cache-Control"])
        m = r.json()
        self.assertEqual((m["kind"], m["slices"], m["rows"], m["columns"]), ("stack", 2, 128, 128))
        self.assertEqual(list(m["planes"]), ["axial"])
        self.assertFalse(m["monochrome1"])
        self.assertEqual(m["error"], "")
        self.assertIn("Bone", [p["name"] for p in m["presets"]])
        self.assertGreater(m["window"]["width"], 1)

    def test_it_describes_a_volume_with_plane_sizes(self) -> None:
        series, _ = make_volume_series(self.study)
        self.login(self.alice)
        m = self.client.get(f"/viewer/series/{series.code}/manifest.json").json()
        self.assertEqual(m["kind"], "volume")
        self.assertEqual(m["slice_spacing"], 2.0)
        self.assertEqual(
            m["planes"]["coronal"],
            {
                "count": 16,
                "rows": 5,
                "columns": 12,
                "spacing": [2.0, 0.4],
                "labels": {"right": "L", "bottom": "I"},
            },
        )
        self.assertEqual(m["planes"]["sagittal"]["spacing"], [2.0, 0.5])
        self.assertEqual(m["rescale"], {"slope": 1.0, "intercept": -1024.0})

    def test_it_checks_practice(self) -> None:
        self.login(self.charlie)
        self.assertEqual(self.client.get(self.url).status_code, 404)

    def test_it_hides_from_anonymous_and_front_desk(self) -> None:
        self.assertEqual(self.client.get(self.url).status_code, 404)
        self.login(self.bob)
        self.assertEqual(self.client.get(self.url).status_code, 404)

    def test_it_audits_once_per_session(self) -> None:
        self.login(self.alice)
        self.client.get(self.url)
        self.client.get(f"/viewer/series/{self.series.code}/axial/0.jpg")
        self.assertEqual(AccessEvent.objects.filter(action=Action.VIEW_SERIES).count(), 1)

    def test_it_reports_a_decode_error_for_that_series_only(self) -> None:
        for inst in self.series.instances.all():
            inst.blob = vault.store_bytes(b"garbage")
            inst.save()
        good, _ = make_volume_series(self.study)
        self.login(self.alice)
        self.assertIn("could not be read", self.client.get(self.url).json()["error"])
        m = self.client.get(f"/viewer/series/{good.code}/manifest.json").json()
        self.assertEqual(m["error"], "")

    def test_it_does_not_mark_a_series_broken_for_one_corrupt_slice(self) -> None:
        """The middle slice is corrupt: the viewer opens on a probed slice that decodes."""
        series, _ = make_volume_series(self.study)
        truncate_pixels(series, 2)
        self.login(self.alice)
        m = self.client.get(f"/viewer/series/{series.code}/manifest.json").json()
        self.assertEqual(m["error"], "")
        self.assertNotEqual(m["initial_index"], 2)
        r = self.client.get(f"/viewer/series/{series.code}/axial/{m['initial_index']}.jpg")
        self.assertEqual(r.status_code, 200)
        series.refresh_from_db()
        self.assertEqual(series.decode_error, "")

    def test_it_clears_a_stale_decode_error(self) -> None:
        self.series.decode_error = "The file could not be read as DICOM."
        self.series.save()
        self.login(self.alice)
        self.assertEqual(self.client.get(self.url).json()["error"], "")
        self.series.refresh_from_db()
        self.assertEqual(self.series.decode_error, "")

    def test_a_dental_cbct_opens_through_the_crowns_by_its_occlusal_plane(self) -> None:
        """The stored volume's teeth decide the opening slice, not the middle of the stack: a
        few mm below the occlusal plane, through the lower crowns, since the plane itself
        runs between the teeth (in the gap a bite block leaves)."""
        with self.captureOnCommitCallbacks(execute=True):
            series = make_dental_series(self.practice, self.alice)
        series.refresh_from_db()
        self.assertIsNotNone(series.volume)
        self.assertLessEqual(abs(series.opening_slice - SMALL_DENTAL.occlusal_slice), 2)
        mpr.clear_caches()
        self.login(self.alice)
        m = self.client.get(f"/viewer/series/{series.code}/manifest.json").json()
        layout = layouts.layout_for(series)
        below = round(3.0 / SMALL_DENTAL.slice_thickness_mm)
        step = -1 if layout.head_last else 1
        self.assertEqual(m["initial_index"], series.opening_slice + step * below)
        enamel = enamel_profile(mpr.volume(layout), layout.voxel_spacing(), layout.volume_rescale())
        self.assertGreater(enamel[m["initial_index"]], 0.3 * enamel.max(), "no teeth shown")
        self.assertLess(enamel[series.opening_slice], 0.1 * enamel.max(), "the plane is the gap")
        self.assertLess(
            SMALL_DENTAL.slice_z_mm(m["initial_index"]),
            SMALL_DENTAL.occlusal_z_mm,
            "the lower crowns are below the occlusal plane",
        )
        curve = arches.detected_arch(layout)
        self.assertEqual(curve.occlusal_index, series.opening_slice)

    def test_a_scan_without_teeth_still_opens_in_the_middle(self) -> None:
        """A CT volume with no enamel keeps the middle slice."""
        series, _ = make_volume_series(self.study)
        self.login(self.alice)
        m = self.client.get(f"/viewer/series/{series.code}/manifest.json").json()
        self.client.get(f"/viewer/series/{series.code}/coronal/0.jpg")  # stores the volume
        series.refresh_from_db()
        self.assertIsNone(series.opening_slice)
        self.assertEqual(m["initial_index"], m["slices"] // 2)
