"""Dental views and stored volumes facing odd headers, old data and impatient clients."""

from __future__ import annotations

import io
from contextlib import ExitStack

from django.core.management import call_command

from portal.models import Instance, Series
from tests.sharing.helpers import ShareTestCase
from tests.viewer.dental_helpers import CURVE, make_dental_series
from tests.viewer.helpers import make_volume_series
from viewer import arches, dental_views, mpr
from viewer.tasks import build_previews


class DentalRobustnessTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        self.series = make_dental_series(self.study)
        self.base = f"/viewer/series/{self.series.code}/dental"
        self.pano = f"{self.base}/panoramic.jpg?points={CURVE}&occlusal=30"

    def test_a_degenerate_curve_is_a_clear_400(self) -> None:
        self.login(self.alice)
        for view in ("path.json", "panoramic.jpg", "section.jpg"):
            with self.subTest(view=view):
                r = self.client.get(f"{self.base}/{view}?points=5,5;5,5;5,5&occlusal=3&at=0")
                self.assertEqual(r.status_code, 400)
                self.assertIn(b"too short", r.content)

    def test_absurd_pixel_spacing_is_refused_with_a_reason(self) -> None:
        Instance.objects.filter(series=self.series).update(pixel_spacing=[0.002, 0.002])
        mpr.clear_caches()
        self.login(self.alice)
        section = f"{self.pano}&at=1".replace("panoramic", "section")
        path = f"{self.base}/path.json?points={CURVE}&occlusal=3"
        for url in (f"{self.base}/arch.json", self.pano, section, path):
            with self.subTest(url=url):
                r = self.client.get(url)
                self.assertEqual(r.status_code, 422)
                self.assertIn("0.05 mm", r.json()["error"])
        manifest = self.client.get(f"/viewer/series/{self.series.code}/manifest.json").json()
        self.assertFalse(manifest["teeth"])  # stored, but no Panoramic button

    def test_a_volume_stored_before_the_upgrade_gets_its_panoramic_back(self) -> None:
        self.login(self.alice)
        url = f"/viewer/series/{self.series.code}/manifest.json"
        self.client.get(f"/viewer/series/{self.series.code}/coronal/0.jpg")  # stores the volume
        Series.objects.filter(pk=self.series.pk).update(opening_slice=None)
        mpr.clear_caches()
        self.assertIs(self.client.get(url).json()["teeth"], False)
        out = io.StringIO()
        call_command("find_opening_slices", stdout=out)
        self.assertIn("1 stored volumes checked, 1 changed", out.getvalue())
        mpr.clear_caches()
        self.assertIs(self.client.get(url).json()["teeth"], True)

    def test_occlusal_does_not_render_the_panoramic_again(self) -> None:
        self.login(self.alice)
        self.assertEqual(self.client.get(self.pano).status_code, 200)
        cached = len(mpr.image_cache())
        other = self.pano.replace("occlusal=30", "occlusal=20").replace(",90;", ".04,90;", 1)
        self.assertEqual(self.client.get(other).status_code, 200)
        self.assertEqual(len(mpr.image_cache()), cached)

    def test_a_feet_first_scan_gets_an_arch_from_the_patients_right(self) -> None:
        """The row direction points to the patient's right, so the arch starts on the image's."""
        self.login(self.alice)
        head_first = self.client.get(f"{self.base}/arch.json").json()["curve"]["points"]
        Instance.objects.filter(series=self.series).update(image_orientation=[-1, 0, 0, 0, 1, 0])
        mpr.clear_caches()
        arches.forget_arches()
        feet_first = self.client.get(f"{self.base}/arch.json").json()["curve"]["points"]
        self.assertLess(head_first[0][0], 64)
        self.assertGreater(feet_first[0][0], 64)
        self.assertAlmostEqual(feet_first[0][0], head_first[-1][0], delta=2)  # same pixels

    def test_a_session_gets_429_past_its_concurrent_renders(self) -> None:
        self.login(self.alice)
        who = self.client.session.session_key
        with ExitStack() as held:
            for _ in range(dental_views.RENDERS.per_client):
                self.assertTrue(held.enter_context(dental_views.RENDERS.take(who)))
            r = self.client.get(self.pano)
        self.assertEqual(r.status_code, 429)
        self.assertEqual(self.client.get(self.pano).status_code, 200)


class NegativeSlopeTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.series, _ = make_volume_series(self.study)
        Instance.objects.filter(series=self.series).update(rescale_slope=-1.0)
        mpr.clear_caches()

    def test_the_preview_task_stores_the_volume_and_the_thumbnail(self) -> None:
        build_previews([self.series.pk], [])
        self.series.refresh_from_db()
        self.assertIsNotNone(self.series.volume_id)
        self.assertIsNotNone(self.series.thumbnail_id)
        self.assertIsNone(self.series.opening_slice)

    def test_coronal_views_still_work(self) -> None:
        self.login(self.alice)
        r = self.client.get(f"/viewer/series/{self.series.code}/coronal/0.jpg")
        self.assertEqual(r.status_code, 200)
