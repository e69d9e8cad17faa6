from __future__ import annotations

from audit.models import AccessEvent, Action
from portal.demo import phantom
from tests.base import BaseTestCase
from tests.viewer.helpers import make_pdf, make_photo


class AttachmentFileTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.photo = make_photo(self.study)
        self.pdf = make_pdf(self.study)

    def test_it_sends_a_photo_inline(self) -> None:
        self.login(self.alice)
        r = self.client.get(f"/viewer/attachments/{self.photo.code}/file")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r["Content-Type"], "image/jpeg")
        self.assertEqual(b"".join(r.streaming_content), phantom.make_photo_jpeg())
        self.assertEqual(int(r["Content-Length"]), len(phantom.make_photo_jpeg()))
        self.assertTrue(r["Content-Disposition"].startswith("inline"))
        self.assertIn("no-store", r["Cache-Control"])

    def test_it_lets_the_viewer_frame_a_pdf(self) -> None:
        self.login(self.alice)
        r = self.client.get(f"/viewer/attachments/{self.pdf.code}/file")
        self.assertEqual(r["Content-Type"], "application/pdf")
        self.assertTrue(b"".join(r.streaming_content).startswith(b"%PDF"))
        self.assertEqual(r["X-Frame-Options"], "SAMEORIGIN")
        self.assertIn("frame-ancestors 'self'", r["Content-Security-Policy"])

    def test_it_keeps_other_pages_unframeable(self) -> None:
        self.login(self.alice)
        r = self.client.get(f"/viewer/studies/{self.study.code}/")
        self.assertEqual(r["X-Frame-Options"], "DENY")
        self.assertIn("frame-ancestors 'none'", r["Content-Security-Policy"])

    def test_it_sends_unknown_types_as_downloads(self) -> None:
        self.photo.content_type = "text/html"
        self.photo.save()
        self.login(self.alice)
        r = self.client.get(f"/viewer/attachments/{self.photo.code}/file")
        self.assertEqual(r["Content-Type"], "application/octet-stream")
        self.assertTrue(r["Content-Disposition"].startswith("attachment"))

    def test_it_checks_practice(self) -> None:
        self.login(self.charlie)
        r = self.client.get(f"/viewer/attachments/{self.photo.code}/file")
        self.assertEqual(r.status_code, 404)

    def test_it_hides_from_anonymous_and_front_desk(self) -> None:
        url = f"/viewer/attachments/{self.pdf.code}/file"
        self.assertEqual(self.client.get(url).status_code, 404)
        self.login(self.bob)
        self.assertEqual(self.client.get(url).status_code, 404)

    def test_it_audits_the_first_view(self) -> None:
        self.login(self.alice)
        for _ in range(2):
            self.client.get(f"/viewer/attachments/{self.photo.code}/file")
        event = AccessEvent.objects.get(action=Action.VIEW_ATTACHMENT)
        self.assertEqual(event.object_code, str(self.photo.code))
