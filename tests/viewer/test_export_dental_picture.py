"""Panoramic and cross-section pictures as downloads: named, audited, counted for a share."""

from __future__ import annotations

import io

from PIL import Image

from audit.models import AccessEvent, Action, Outcome
from tests.sharing.helpers import ShareTestCase
from tests.viewer.dental_helpers import CURVE, make_dental_series
from viewer import mpr


class ExportDentalPictureTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        self.series = make_dental_series(self.study)
        base = f"/viewer/series/{self.series.code}/dental/export"
        self.pano = f"{base}/panoramic.png?points={CURVE}&occlusal=30"
        self.section = f"{base}/section.jpg?points={CURVE}&occlusal=30&at=12.5&width=20"

    def test_staff_download_a_named_png_and_it_is_audited_as_a_download(self) -> None:
        self.login(self.alice)
        r = self.client.get(self.pano)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r["Content-Type"], "image/png")
        self.assertEqual(
            r["Content-Disposition"],
            'attachment; filename="smile-dental-cbct-maxilla-2026-03-04-panoramic.png"',
        )
        self.assertEqual(Image.open(io.BytesIO(r.content)).format, "PNG")
        event = AccessEvent.objects.get(action=Action.DOWNLOAD)
        self.assertEqual((event.user, event.patient), (self.alice, self.pat))
        self.assertEqual(event.detail["kind"], "panoramic-png")

    def test_a_cross_section_is_named_after_its_position(self) -> None:
        self.login(self.alice)
        r = self.client.get(self.section)
        self.assertEqual(r["Content-Type"], "image/jpeg")
        self.assertIn("cross-section-12-5mm.jpg", r["Content-Disposition"])

    def test_a_recipient_saves_it_audited_without_using_a_download(self) -> None:
        self.sign_in()
        r = self.client.get(self.section)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(Image.open(io.BytesIO(r.content)).format, "JPEG")
        self.share.refresh_from_db()
        self.assertEqual(self.share.download_count, 0)
        event = AccessEvent.objects.get(action=Action.DOWNLOAD, share_code=self.share.code)
        self.assertEqual(event.detail["counted"], False)

    def test_a_link_without_downloads_refuses_and_audits(self) -> None:
        self.share.allow_download = False
        self.share.save()
        self.sign_in()
        r = self.client.get(self.pano)
        self.assertEqual(r.status_code, 403)
        self.assertNotIn(b"PNG", r.content[:8])
        self.assertTrue(
            AccessEvent.objects.filter(action=Action.DOWNLOAD, outcome=Outcome.DENIED).exists()
        )

    def test_the_viewer_offers_saving_only_where_downloads_are_allowed(self) -> None:
        self.sign_in()
        page = f"/viewer/studies/{self.study.code}/"
        self.assertContains(self.client.get(page), "Save the panoramic")
        self.share.allow_download = False
        self.share.save()
        self.assertNotContains(self.client.get(page), "Save the panoramic")

    def test_it_checks_practice_and_hides_from_anonymous(self) -> None:
        self.assertEqual(self.client.get(self.pano).status_code, 404)
        self.login(self.charlie)
        self.assertEqual(self.client.get(self.pano).status_code, 404)
        self.assertFalse(AccessEvent.objects.filter(action=Action.DOWNLOAD).exists())

    def test_bad_input_is_a_400_not_a_download(self) -> None:
        self.login(self.alice)
        r = self.client.get(self.pano.replace("occlusal=30", "occlusal=-3"))
        self.assertEqual(r.status_code, 400)
        self.assertFalse(AccessEvent.objects.filter(action=Action.DOWNLOAD).exists())
