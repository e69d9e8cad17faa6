"""Images shown as the modality meant them: each compared pixel by pixel with dcmtk's dcmj2pnm."""

from __future__ import annotations

import io

import numpy as np
from django.core.cache import cache
from PIL import Image

from portal.ingest import ingest_files
from portal.models import Series
from tests.base import BaseTestCase
from tests.dicom_samples import (
    dcmtk_render,
    enhanced_ct,
    identify,
    needs_tools,
    psnr,
    sample,
    to_bytes,
)
from viewer import mpr

pytestmark = needs_tools("dcmj2pnm")


class FidelityTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        cache.clear()
        self.login(self.alice)

    def ingest(self, data: bytes) -> Series:
        with self.captureOnCommitCallbacks(execute=False):
            report = ingest_files([("f.dcm", io.BytesIO(data))], practice=self.practice)
        self.assertEqual(report.lines(), ["stored  f.dcm"])
        return Series.objects.exclude(study=self.study).get()

    def png(self, series: Series, index: int = 0, query: str = "") -> np.ndarray:
        r = self.client.get(f"/viewer/series/{series.code}/axial/{index}.png?{query}")
        self.assertEqual(r.status_code, 200, r.content[:200])
        return np.asarray(Image.open(io.BytesIO(r.content)))

    def test_enhanced_ct_uses_the_rescale_of_its_shared_functional_groups(self) -> None:
        data = to_bytes(identify(enhanced_ct(), 1))
        series = self.ingest(data)
        for frame in (0, 3):
            got = self.png(series, frame, "c=40&w=400")
            expected = dcmtk_render(data, frame=frame + 1, window=(40, 400))
            self.assertGreaterEqual(psnr(got, expected), 45)

    def test_enhanced_ct_opens_on_the_window_of_its_functional_groups(self) -> None:
        series = self.ingest(to_bytes(identify(enhanced_ct(), 1)))
        manifest = self.client.get(f"/viewer/series/{series.code}/manifest.json").json()
        self.assertEqual((manifest["window"]["center"], manifest["window"]["width"]), (40, 400))
        self.assertEqual(manifest["pixel_spacing"], [0.5, 0.4])
        self.assertEqual(manifest["kind"], "volume")

    def test_12_bit_jpeg_extended_renders_as_dcmtk_does(self) -> None:
        data = to_bytes(identify(sample("JPEG-lossy.dcm"), 2))
        series = self.ingest(data)
        got = self.png(series, 0, "c=2048&w=4096")
        expected = dcmtk_render(data, window=(2048, 4096))
        self.assertGreaterEqual(psnr(got, expected), 45)

    def test_a_palette_colour_series_is_colour_without_window(self) -> None:
        data = to_bytes(identify(sample("examples_palette.dcm"), 3))
        series = self.ingest(data)
        manifest = self.client.get(f"/viewer/series/{series.code}/manifest.json").json()
        self.assertTrue(manifest["colour"])
        got = self.png(series)
        self.assertEqual(got.ndim, 3)
        self.assertGreaterEqual(psnr(got, dcmtk_render(data)), 45)

    def test_overlays_are_drawn_and_can_be_hidden(self) -> None:
        data = to_bytes(identify(sample("examples_overlay.dcm"), 4))
        series = self.ingest(data)
        manifest = self.client.get(f"/viewer/series/{series.code}/manifest.json").json()
        self.assertTrue(manifest["overlays"])
        shown = self.png(series, 0, "c=600&w=1200&overlay=1")
        hidden = self.png(series, 0, "c=600&w=1200&overlay=0")
        self.assertGreaterEqual(psnr(shown, dcmtk_render(data, window=(600, 1200))), 45)
        no_overlay = dcmtk_render(data, window=(600, 1200), extra=("--no-overlays",))
        self.assertGreaterEqual(psnr(hidden, no_overlay), 45)
        self.assertGreater(int(np.sum(shown != hidden)), 100)
