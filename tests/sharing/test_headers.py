"""Every recipient response carries the no-store, no-referrer, CSP and framing headers."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

from django.test import Client
from django.utils import timezone

from sharing import throttle
from tests.sharing.helpers import ShareTestCase, add_attachments


class RecipientHeadersTestCase(ShareTestCase):
    def assert_headers(self, r) -> None:
        self.assertIn("no-store", r["Cache-Control"])
        self.assertEqual(r["Referrer-Policy"], "no-referrer")
        self.assertEqual(r["X-Frame-Options"], "DENY")
        self.assertEqual(r["X-Content-Type-Options"], "nosniff")
        csp = r["Content-Security-Policy"]
        self.assertIn("default-src 'self'", csp)
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertNotIn("unsafe-eval", csp)

    @mock.patch.object(throttle, "delay_after", return_value=0.0)
    def test_every_recipient_response(self, _delay) -> None:
        photo, _ = add_attachments(self.study)
        responses = [self.open_link(), self.client.get("/s/"), self.verify(password="x-wrong-1")]
        self.open_link()
        responses.append(self.verify())
        for url in ["/s/home/", "/s/download/share.zip", f"/s/download/attachments/{photo.code}",
                    "/s/download/instances/00000000-0000-0000-0000-000000000000"]:  # fmt: skip
            responses.append(self.client.get(url))
        responses.append(self.client.get(f"/s/download/attachments/{photo.code}",
                                         HTTP_RANGE="bytes=0-1,4-5"))  # fmt: skip
        responses.append(Client().get("/s/not-a-token"))
        self.share.expires_at = timezone.now() - timedelta(seconds=1)
        self.share.save()
        responses.append(Client().get(self.issued.path))
        statuses = [r.status_code for r in responses]
        self.assertEqual(statuses, [303, 200, 200, 303, 200, 200, 200, 404, 416, 404, 410])
        for r in responses:
            with self.subTest(status=r.status_code, path=r.wsgi_request.path[:12]):
                self.assert_headers(r)

    def test_pages_carry_no_inline_script_or_style(self) -> None:
        add_attachments(self.study)
        self.open_link()
        pages = [self.client.get("/s/")]
        self.verify()
        pages.append(self.client.get("/s/home/"))
        for r in pages:
            html = r.content.decode()
            self.assertIsNone(re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html))
            self.assertNotIn("<style", html)
            self.assertIsNone(re.search(r"\sstyle=", html))
            self.assertIsNone(re.search(r"\son[a-z]+=", html))

    def test_viewer_responses_for_a_recipient(self) -> None:
        """The viewer's pages and images under a share carry the same headers."""
        self.open_link()
        self.verify()
        series = self.study.series.first()
        urls = [
            f"/viewer/studies/{self.study.code}/",
            f"/viewer/series/{series.code}/manifest.json",
            f"/viewer/series/{series.code}/axial/0.jpg",
            f"/viewer/series/{series.code}/thumbnail.jpg",
        ]
        for url in urls:
            r = self.client.get(url)
            with self.subTest(url=url):
                self.assertEqual(r.status_code, 200)
                self.assert_headers(r)

    def test_the_inline_file_may_be_framed_by_the_portal_only(self) -> None:
        """PDFs show inside the viewer page (issue: PDFs inline), so this one response allows
        framing by its own origin and by nobody else; every other header stays."""
        photo, pdf = add_attachments(self.study)
        self.open_link()
        self.verify()
        for attachment in (photo, pdf):
            r = self.client.get(f"/viewer/attachments/{attachment.code}/file")
            with self.subTest(kind=attachment.kind):
                self.assertEqual(r.status_code, 200)
                self.assertEqual(r["X-Frame-Options"], "SAMEORIGIN")
                csp = r["Content-Security-Policy"]
                self.assertIn("frame-ancestors 'self'", csp)
                self.assertNotIn("frame-ancestors *", csp)
                self.assertIn("no-store", r["Cache-Control"])
                self.assertEqual(r["Referrer-Policy"], "no-referrer")
                self.assertEqual(r["X-Content-Type-Options"], "nosniff")
                self.assertNotIn("unsafe-inline", csp)
