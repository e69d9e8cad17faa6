"""Panoramic and cross-section images along a curve, under the slice views' access rules."""

from __future__ import annotations

import io
from unittest import mock

import numpy as np
from PIL import Image

from audit.models import AccessEvent, Action, Outcome
from tests.base import make_ct_study
from tests.sharing.helpers import ShareTestCase
from tests.viewer.dental_helpers import CURVE, TINY_DENTAL, make_dental_series
from viewer import arches, mpr


class DentalImageTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        self.series = make_dental_series(self.study)
        self.base = f"/viewer/series/{self.series.code}/dental"
        self.pano = f"{self.base}/panoramic.jpg?points={CURVE}&occlusal=30&c=400&w=3000"
        self.section = f"{self.base}/section.png?points={CURVE}&occlusal=30&at=20&width=20"

    def _image(self, url: str) -> np.ndarray:
        r = self.client.get(url)
        self.assertEqual(r.status_code, 200, r.content[:200])
        return np.asarray(Image.open(io.BytesIO(r.content)).convert("L"))

    def test_the_panoramic_spans_the_curve_and_every_slice(self) -> None:
        self.login(self.alice)
        r = self.client.get(self.pano)
        self.assertEqual(r["Content-Type"], "image/jpeg")
        self.assertIn("no-store", r["Cache-Control"])
        length = self.client.get(f"{self.base}/path.json?points={CURVE}&occlusal=30").json()
        width, height = Image.open(io.BytesIO(r.content)).size
        self.assertEqual(height, TINY_DENTAL.slices)
        self.assertAlmostEqual(width, length["length_mm"] / 0.8 + 1, delta=1.01)

    def test_the_teeth_show_bright_at_their_slices(self) -> None:
        self.login(self.alice)
        arch = self.client.get(f"{self.base}/arch.json").json()
        points = ";".join(f"{c},{r}" for c, r in arch["curve"]["points"])
        img = self._image(f"{self.base}/panoramic.png?points={points}&occlusal=30&c=1000&w=3000")
        g = TINY_DENTAL
        rows = g.slices - 1 - np.arange(g.slices)  # superior first: row of each slice
        z = np.array([g.slice_z_mm(k) for k in range(g.slices)])
        crowns = rows[np.abs(z - g.occlusal_z_mm) <= 4]
        sinus_and_nose = rows[z >= g.occlusal_z_mm + 25]
        self.assertGreater(img[crowns].mean(), img[sinus_and_nose].mean() + 40)

    def test_slab_thickness_and_mode_change_the_image(self) -> None:
        self.login(self.alice)
        base = self.pano.replace(".jpg", ".png")
        thin = self._image(base + "&thickness=0")
        thick = self._image(base + "&thickness=10")
        brightest = self._image(base + "&thickness=10&mode=max")
        self.assertFalse(np.array_equal(thin, thick))
        self.assertGreaterEqual(brightest.astype(int).sum(), thick.astype(int).sum())

    def test_a_cross_section_is_as_wide_as_asked(self) -> None:
        self.login(self.alice)
        img = self._image(self.section)
        self.assertEqual(img.shape, (TINY_DENTAL.slices, round(20 / 0.8) + 1))

    def test_a_repeated_image_is_not_rendered_again(self) -> None:
        self.login(self.alice)
        first = self.client.get(self.pano).content
        with mock.patch.object(arches.dental, "panoramic", side_effect=AssertionError):
            self.assertEqual(self.client.get(self.pano).content, first)

    def test_it_rejects_bad_curves_and_sizes_with_a_sentence(self) -> None:
        self.login(self.alice)
        good = f"points={CURVE}&occlusal=30"
        hostile = [
            "", "points=1,2;3,4&occlusal=30", f"points={CURVE}", f"{good[:-2]}99",
            "points=" + ";".join(["10,10"] * 33) + "&occlusal=1", "points=a,b;1,2;3,4&occlusal=1",
            "points=1,2,3;4,5;6,7&occlusal=1", "points=nan,1;2,3;4,5&occlusal=1",
            "points=-1,5;20,5;40,5&occlusal=1", "points=500,5;20,5;40,5&occlusal=1",
            f"{good}&occlusal=2.5", f"{good}&thickness=-1", f"{good}&thickness=1e9",
            f"{good}&mode=median", f"{good}&c=nan", f"{good}&w=0",
            "points=" + ";".join(["0,0", "127,127"] * 16) + "&occlusal=1",
        ]  # fmt: skip
        for query in hostile:
            with self.subTest(query=query):
                r = self.client.get(f"{self.base}/panoramic.jpg?{query}")
                self.assertEqual(r.status_code, 400)
                self.assertEqual(r["Content-Type"], "text/plain")
                self.assertNotIn(b"Traceback", r.content)
        for query in ("", "&at=-1", "&at=9999", "&at=5&width=1", "&at=5&thickness=11"):
            with self.subTest(query=query):
                r = self.client.get(f"{self.base}/section.jpg?{good}{query}")
                self.assertEqual(r.status_code, 400)

    def test_a_panoramic_too_large_to_read_is_refused(self) -> None:
        self.login(self.alice)
        with mock.patch("viewer.dental.panoramic.MAX_READS", 10_000):
            r = self.client.get(self.pano + "&thickness=30")
        self.assertEqual(r.status_code, 400)
        self.assertIn(b"too large", r.content)

    def test_unknown_views_are_404(self) -> None:
        self.login(self.alice)
        self.assertEqual(self.client.get(f"{self.base}/oblique.jpg?{CURVE}").status_code, 404)

    def test_a_recipient_sees_it_and_the_series_is_audited_once(self) -> None:
        self.sign_in()
        self.assertEqual(self.client.get(self.pano).status_code, 200)
        self.assertEqual(self.client.get(self.section).status_code, 200)
        events = AccessEvent.objects.filter(action=Action.VIEW_SERIES, share_code=self.share.code)
        self.assertEqual(events.count(), 1)

    def test_it_checks_practice(self) -> None:
        self.login(self.charlie)
        self.assertEqual(self.client.get(self.pano).status_code, 404)
        self.assertTrue(AccessEvent.objects.filter(outcome=Outcome.DENIED).exists())

    def test_anonymous_and_front_desk_get_no_bytes(self) -> None:
        r = self.client.get(self.pano)
        self.assertEqual(r.status_code, 404)
        self.assertNotIn(b"JFIF", r.content)
        self.login(self.bob)
        self.assertEqual(self.client.get(self.section).status_code, 404)

    def test_the_recipient_of_another_link_gets_a_404(self) -> None:
        other = self.issue(study=make_ct_study(self.pat, uid_root="1.2.826.0.1.3680043.8.498.2"))
        self.sign_in(other)
        self.assertEqual(self.client.get(self.pano).status_code, 404)
        self.assertEqual(self.client.get(self.section).status_code, 404)
