from __future__ import annotations

import io
from unittest import mock

import numpy as np
import pydicom
from PIL import Image

from audit.models import AccessEvent, Action, Outcome
from portal import vault
from tests.base import BaseTestCase
from tests.viewer.helpers import make_volume_series, truncate_pixels
from viewer import layouts, mpr, render


class SeriesSliceTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        self.series = self.study.series.get()
        self.url = f"/viewer/series/{self.series.code}/axial/0.jpg"

    def test_it_renders_a_jpeg(self) -> None:
        self.login(self.alice)
        r = self.client.get(self.url + "?c=40&w=400")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r["Content-Type"], "image/jpeg")
        self.assertIn("no-store", r["Cache-Control"])
        self.assertEqual(Image.open(io.BytesIO(r.content)).size, (128, 128))

    def test_a_repeated_image_is_served_without_rendering_again(self) -> None:
        self.login(self.alice)
        first = self.client.get(self.url + "?c=40&w=400").content
        with mock.patch.object(render, "render_slice", side_effect=AssertionError("rendered")):
            again = self.client.get(self.url + "?c=40&w=400").content
        self.assertEqual(first, again)

    def test_each_window_gets_its_own_image(self) -> None:
        self.login(self.alice)
        png = self.url.replace(".jpg", ".png")
        images = {self.client.get(png + q).content for q in ("?c=40&w=400", "?c=900&w=100")}
        self.assertEqual(len(images), 2)
        self.assertEqual(len({self.client.get(png + "?c=40&w=400&invert=1").content} | images), 3)

    def test_it_matches_a_direct_render_losslessly(self) -> None:
        self.login(self.alice)
        r = self.client.get(f"/viewer/series/{self.series.code}/axial/1.png?c=100&w=500&invert=1")
        self.assertEqual(r["Content-Type"], "image/png")
        inst = self.series.instances.order_by("instance_number")[1]
        ds = pydicom.dcmread(io.BytesIO(vault.read_bytes(inst.blob)))
        expected = render.apply_window(
            ds.pixel_array,
            100,
            500,
            True,
            slope=float(ds.RescaleSlope),
            intercept=float(ds.RescaleIntercept),
        )
        got = np.asarray(Image.open(io.BytesIO(r.content)))
        np.testing.assert_array_equal(got, expected)

    def test_it_checks_practice(self) -> None:
        self.login(self.charlie)
        r = self.client.get(self.url)
        self.assertEqual(r.status_code, 404)
        self.assertTrue(AccessEvent.objects.filter(outcome=Outcome.DENIED).exists())

    def test_it_hides_pixels_from_anonymous(self) -> None:
        self.assertEqual(self.client.get(self.url).status_code, 404)

    def test_it_hides_pixels_from_front_desk(self) -> None:
        self.login(self.bob)
        self.assertEqual(self.client.get(self.url).status_code, 404)

    def test_it_lets_front_desk_see_when_the_practice_allows(self) -> None:
        self.practice.front_desk_views_images = True
        self.practice.save()
        self.login(self.bob)
        self.assertEqual(self.client.get(self.url).status_code, 200)

    def test_it_audits_the_first_view_only(self) -> None:
        self.login(self.alice)
        for index in (0, 1, 0):
            self.client.get(f"/viewer/series/{self.series.code}/axial/{index}.jpg")
        events = AccessEvent.objects.filter(action=Action.VIEW_SERIES)
        self.assertEqual(events.count(), 1)
        self.assertEqual(events.get().object_code, str(self.series.code))
        self.assertEqual(events.get().patient, self.pat)

    def test_it_404s_out_of_range_and_unknown_planes(self) -> None:
        self.login(self.alice)
        for path in ("axial/2.jpg", "axial/99999.jpg", "coronal/0.jpg", "oblique/0.jpg"):
            with self.subTest(path=path):
                r = self.client.get(f"/viewer/series/{self.series.code}/{path}")
                self.assertEqual(r.status_code, 404)

    def test_it_rejects_hostile_window_values(self) -> None:
        self.login(self.alice)
        for query in (
            "c=nan&w=400",
            "c=1&w=inf",
            "c=x&w=1",
            "c=1&w=0",
            "invert=yes",
            "c=1e400&w=1",
        ):
            with self.subTest(query=query):
                self.assertEqual(self.client.get(f"{self.url}?{query}").status_code, 400)

    def test_it_reports_an_undecodable_slice_without_marking_the_series(self) -> None:
        inst = self.series.instances.first()
        inst.blob = vault.store_bytes(b"DICM? not really")
        inst.save()
        self.login(self.alice)
        urls = [f"/viewer/series/{self.series.code}/axial/{i}.jpg?c=40&w=400" for i in (0, 1)]
        responses = sorted((self.client.get(u) for u in urls), key=lambda r: r.status_code)
        self.assertEqual([r.status_code for r in responses], [200, 422])
        self.assertEqual(responses[1].content, b"The file could not be read as DICOM.")
        self.series.refresh_from_db()
        self.assertEqual(self.series.decode_error, "")


class VolumeSliceTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        self.series, self.pixels = make_volume_series(self.study)
        self.login(self.alice)

    def _png(self, plane: str, index: int) -> np.ndarray:
        r = self.client.get(f"/viewer/series/{self.series.code}/{plane}/{index}.png?c=0&w=4000")
        self.assertEqual(r.status_code, 200)
        return np.asarray(Image.open(io.BytesIO(r.content)))

    def _window(self, values: np.ndarray) -> np.ndarray:
        return render.apply_window(values, 0, 4000, intercept=-1024)

    def test_it_sorts_axial_slices_by_position(self) -> None:
        np.testing.assert_array_equal(self._png("axial", 3), self._window(self.pixels[3]))

    def test_it_cuts_coronal_and_sagittal_with_superior_up(self) -> None:
        coronal = self._window(self.pixels[::-1, 7, :])
        sagittal = self._window(self.pixels[::-1, :, 5])
        np.testing.assert_array_equal(self._png("coronal", 7), coronal)
        np.testing.assert_array_equal(self._png("sagittal", 5), sagittal)

    def test_it_404s_past_the_volume(self) -> None:
        for path in ("coronal/16.jpg", "sagittal/12.jpg", "axial/5.jpg"):
            with self.subTest(path=path):
                r = self.client.get(f"/viewer/series/{self.series.code}/{path}")
                self.assertEqual(r.status_code, 404)

    def test_a_volume_too_large_for_the_cache_is_not_built(self) -> None:
        """Reformats answer 413 with a reason; axial works; the series is not marked broken."""
        budget = mpr.volume_bytes(layouts.layout_for(self.series)) - 1
        with mock.patch.object(mpr, "_pixels", render.BoundedCache(budget)):
            with mock.patch.object(mpr, "decode_volume", wraps=mpr.decode_volume) as build:
                r = self.client.get(f"/viewer/series/{self.series.code}/coronal/3.jpg")
                self.assertEqual(r.status_code, 413)
                self.assertIn(b"too large", r.content)
                self.assertEqual(build.call_count, 0)
            self.assertEqual(self._png("axial", 3).shape, self.pixels[3].shape)
        self.series.refresh_from_db()
        self.assertEqual(self.series.decode_error, "")

    def test_it_answers_a_corrupt_slice_alone(self) -> None:
        """That slice gets a short plain reason; the others render; the series is not broken."""
        truncate_pixels(self.series, 2)
        r = self.client.get(f"/viewer/series/{self.series.code}/axial/2.jpg")
        self.assertEqual((r.status_code, r["Content-Type"]), (422, "text/plain"))
        self.assertEqual(r.content, b"The pixel data is shorter than the image size declares.")
        self.assertIn("no-store", r["Cache-Control"])
        for index in (0, 1, 3, 4):
            self.assertEqual(self._png("axial", index).shape, self.pixels[index].shape)
        self.series.refresh_from_db()
        self.assertEqual(self.series.decode_error, "")

    def test_it_refuses_reformats_past_a_corrupt_slice_once(self) -> None:
        """Reformats answer 422 with a reason, decoding the volume only once; axial works."""
        truncate_pixels(self.series, 2)
        with mock.patch.object(mpr, "decode_volume", wraps=mpr.decode_volume) as build:
            for path in ("coronal/3.jpg", "coronal/4.jpg", "sagittal/5.jpg"):
                r = self.client.get(f"/viewer/series/{self.series.code}/{path}")
                self.assertEqual(r.status_code, 422)
                self.assertIn(b"need every slice", r.content)
            self.assertEqual(build.call_count, 1)
        self.assertEqual(self._png("axial", 3).shape, self.pixels[3].shape)
        self.series.refresh_from_db()
        self.assertEqual(self.series.decode_error, "")
