from __future__ import annotations

import re

from audit.models import AccessEvent, Action
from tests.base import BaseTestCase
from tests.viewer.helpers import make_pdf, make_photo


class ViewStudyTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.url = f"/viewer/studies/{self.study.code}/"

    def test_it_lists_series_photos_and_reports(self) -> None:
        photo, pdf = make_photo(self.study), make_pdf(self.study)
        self.login(self.alice)
        r = self.client.get(self.url)
        self.assertEqual(r.status_code, 200)
        series = self.study.series.get()
        self.assertContains(r, f'data-manifest="/viewer/series/{series.code}/manifest.json"')
        self.assertContains(r, f'data-file="/viewer/attachments/{photo.code}/file"')
        self.assertContains(r, f'data-kind="pdf" data-code="{pdf.code}"')
        self.assertContains(r, "Pat Example")
        self.assertContains(r, "CBCT maxilla")

    def test_it_has_no_inline_script_or_style(self) -> None:
        self.login(self.alice)
        html = self.client.get(self.url).content.decode()
        self.assertEqual(re.findall(r"<script(?![^>]*\bsrc=)", html), [])
        self.assertNotIn("<style", html)
        self.assertNotIn(" style=", html)
        self.assertIn("/static/viewer/viewer.js", html)

    def test_it_loads_the_viewer_and_the_dental_view_as_modules(self) -> None:
        self.login(self.alice)
        html = self.client.get(self.url).content.decode()
        for name in ("viewer.js", "dental.js"):
            self.assertIn(f'<script type="module" src="/static/viewer/{name}"></script>', html)
        self.assertIn('id="dental-toggle"', html)
        self.assertIn("Save the panoramic", html)

    def test_it_checks_practice(self) -> None:
        self.login(self.charlie)
        self.assertEqual(self.client.get(self.url).status_code, 404)

    def test_it_redirects_anonymous(self) -> None:
        r = self.client.get(self.url)
        self.assertEqual(r.status_code, 302)
        self.assertIn("/login/", r["Location"])

    def test_it_hides_images_from_front_desk(self) -> None:
        self.login(self.bob)
        self.assertEqual(self.client.get(self.url).status_code, 404)

    def test_it_audits_the_view(self) -> None:
        self.login(self.alice)
        self.client.get(self.url)
        event = AccessEvent.objects.get(action=Action.VIEW_STUDY)
        self.assertEqual((event.object_code, event.patient), (str(self.study.code), self.pat))
        self.assertEqual(event.user, self.alice)

    def test_it_refuses_post(self) -> None:
        self.login(self.alice)
        self.assertEqual(self.client.post(self.url).status_code, 405)

    def test_it_sends_a_lapsed_recipient_back_to_verification(self) -> None:
        session = self.client.session
        session["share_link"] = "00000000-0000-0000-0000-000000000000"
        session.save()
        r = self.client.get(self.url)
        self.assertEqual((r.status_code, r["Location"]), (302, "/s/"))
