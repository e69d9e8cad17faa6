"""One image of a scan saved as a picture: named, audited, counted for a share, as the
panoramic is. A patient on a phone had only ZIPs of every image."""

from __future__ import annotations

import io

from PIL import Image

from audit.models import AccessEvent, Action, Outcome
from portal.compliance import disclosures
from tests.sharing.helpers import ShareTestCase
from viewer import mpr


class ExportSlicePictureTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        self.series = self.study.series.get()
        base = f"/viewer/series/{self.series.code}/axial/0/picture"
        self.jpeg = f"{base}.jpg?c=40&w=400&invert=0"
        self.png = f"{base}.png?c=40&w=400&invert=1"

    def test_staff_save_a_named_picture_audited_as_a_download(self) -> None:
        self.login(self.alice)
        r = self.client.get(self.png)
        self.assertEqual((r.status_code, r["Content-Type"]), (200, "image/png"))
        self.assertEqual(
            r["Content-Disposition"],
            'attachment; filename="smile-dental-cbct-maxilla-2026-03-04-axial-1.png"',
        )
        self.assertEqual(Image.open(io.BytesIO(r.content)).format, "PNG")
        event = AccessEvent.objects.get(action=Action.DOWNLOAD)
        self.assertEqual((event.user, event.patient), (self.alice, self.pat))
        self.assertEqual(event.detail["kind"], "axial-png")

    def test_a_recipient_saves_one_without_using_a_download(self) -> None:
        # Saving one image used up a link's only download: the originals were then refused.
        self.share.max_downloads = 1
        self.share.save()
        self.sign_in()
        r = self.client.get(self.jpeg)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(Image.open(io.BytesIO(r.content)).format, "JPEG")
        self.share.refresh_from_db()
        self.assertEqual(self.share.download_count, 0)
        event = AccessEvent.objects.get(action=Action.DOWNLOAD, share_code=self.share.code)
        self.assertEqual((event.detail["kind"], event.detail["counted"]), ("axial-jpeg", False))
        # Still a disclosure: the accounting and the unusual downloads alert see it.
        uses = [u.what for u in disclosures._uses(self.share.code)]
        self.assertIn(disclosures.RECIPIENT_USES[Action.DOWNLOAD], uses)
        self.assertEqual(self.client.get("/s/download/share.zip").status_code, 200)

    def test_a_view_only_link_refuses_and_the_viewer_offers_nothing(self) -> None:
        self.share.allow_download = False
        self.share.save()
        self.sign_in()
        self.assertEqual(self.client.get(self.jpeg).status_code, 403)
        self.assertTrue(
            AccessEvent.objects.filter(action=Action.DOWNLOAD, outcome=Outcome.DENIED).exists()
        )
        page = self.client.get(f"/viewer/studies/{self.study.code}/")
        self.assertNotContains(page, 'id="save-picture"')

    def test_the_viewer_offers_it_where_downloads_are_allowed(self) -> None:
        self.sign_in()
        page = self.client.get(f"/viewer/studies/{self.study.code}/")
        self.assertContains(page, 'id="save-picture"')

    def test_it_checks_practice_range_and_window(self) -> None:
        self.assertEqual(self.client.get(self.jpeg).status_code, 404)  # nobody signed in
        self.login(self.charlie)
        self.assertEqual(self.client.get(self.jpeg).status_code, 404)
        self.login(self.alice)
        self.assertEqual(self.client.get(self.jpeg.replace("/0/", "/999/")).status_code, 404)
        self.assertEqual(self.client.get(self.jpeg.replace("c=40", "c=x")).status_code, 400)
        self.assertFalse(AccessEvent.objects.filter(action=Action.DOWNLOAD).exists())

    def test_a_link_whose_downloads_are_used_up_still_saves_pictures(self) -> None:
        # The button stayed and answered 403 once the originals had been downloaded.
        self.share.max_downloads = 1
        self.share.save()
        self.sign_in()
        self.assertEqual(self.client.get("/s/download/share.zip").status_code, 200)
        self.assertEqual(self.client.get(self.png).status_code, 200)
        self.assertContains(
            self.client.get(f"/viewer/studies/{self.study.code}/"), 'id="save-picture"'
        )

    def test_only_a_get_saves_one(self) -> None:
        self.login(self.alice)
        self.assertEqual(self.client.post(self.jpeg).status_code, 405)
        self.assertFalse(AccessEvent.objects.filter(action=Action.DOWNLOAD).exists())
