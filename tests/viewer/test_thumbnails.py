from __future__ import annotations

import io

from PIL import Image

from portal import vault
from tests.base import BaseTestCase
from tests.viewer.helpers import make_pdf, make_photo, make_volume_series, truncate_pixels
from viewer import mpr
from viewer.tasks import build_previews


class ThumbnailsTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        self.series = self.study.series.get()
        self.photo = make_photo(self.study)

    def test_it_builds_and_stores_a_series_thumbnail_on_request(self) -> None:
        self.login(self.alice)
        r = self.client.get(f"/viewer/series/{self.series.code}/thumbnail.jpg")
        self.assertEqual((r.status_code, r["Content-Type"]), (200, "image/jpeg"))
        self.series.refresh_from_db()
        self.assertEqual(vault.read_bytes(self.series.thumbnail), r.content)
        self.assertEqual(Image.open(io.BytesIO(r.content)).size, (128, 128))

    def test_it_builds_previews_in_the_task(self) -> None:
        volume, _ = make_volume_series(self.study)
        pdf = make_pdf(self.study)
        build_previews.delay([self.series.pk, volume.pk], [self.photo.pk, pdf.pk])
        volume.refresh_from_db()
        self.photo.refresh_from_db()
        self.assertIsNotNone(volume.thumbnail)
        size = Image.open(io.BytesIO(vault.read_bytes(self.photo.thumbnail))).size
        self.assertEqual(max(size), 128)
        build_previews.delay([volume.pk], [self.photo.pk])  # safe to run twice
        self.assertEqual(mpr.pixel_cache().nbytes, 0)

    def test_it_builds_a_thumbnail_past_a_corrupt_middle_slice(self) -> None:
        volume, _ = make_volume_series(self.study)
        truncate_pixels(volume, 2)
        build_previews.delay([volume.pk], [])
        volume.refresh_from_db()
        self.assertIsNotNone(volume.thumbnail)
        self.assertEqual(volume.decode_error, "")

    def test_it_serves_attachment_thumbnails(self) -> None:
        pdf = make_pdf(self.study)
        self.login(self.alice)
        for att in (self.photo, pdf):
            with self.subTest(kind=att.kind):
                r = self.client.get(f"/viewer/attachments/{att.code}/thumbnail.jpg")
                self.assertEqual((r.status_code, r["Content-Type"]), (200, "image/jpeg"))

    def test_it_checks_practice(self) -> None:
        self.login(self.charlie)
        for url in (
            f"/viewer/series/{self.series.code}/thumbnail.jpg",
            f"/viewer/attachments/{self.photo.code}/thumbnail.jpg",
        ):
            with self.subTest(url=url):
                self.assertEqual(self.client.get(url).status_code, 404)

    def test_it_hides_from_front_desk(self) -> None:
        self.login(self.bob)
        r = self.client.get(f"/viewer/series/{self.series.code}/thumbnail.jpg")
        self.assertEqual(r.status_code, 404)
