"""Back-office pages link only to pages their reader may open.

A practice admin opening an access event, an instance or an attachment saw its user and
stored files as links, and every one answered "You are not allowed to do that".
"""

from __future__ import annotations

import io
import re

from audit.models import AccessEvent
from portal import vault
from portal.models import Attachment, Instance
from tests.base import BaseTestCase

HREF = re.compile(r'href="(/admin/[^"?#]*)"')
# Pages every back-office page links to, or that answer a GET with something else than a page.
SKIP = ("/admin/logout/", "/admin/password_change/", "/admin/jsi18n/")


class AdminLinksTestCase(BaseTestCase):
    def test_a_practice_admin_meets_no_link_to_a_page_they_may_not_open(self) -> None:
        Attachment.objects.create(
            practice=self.practice,
            patient=self.pat,
            study=self.study,
            kind=Attachment.Kind.PDF,
            content_type="application/pdf",
            blob=vault.store(io.BytesIO(b"%PDF-1.4 report")),
        )
        self.login_back_office(self.alice)
        self.client.get(f"/studies/{self.study.code}/")  # an access event naming alice
        pages = [
            f"/admin/audit/accessevent/{AccessEvent.objects.filter(user=self.alice).first().pk}/change/",
            f"/admin/portal/instance/{Instance.objects.filter(series__study=self.study).first().pk}/change/",
            f"/admin/portal/attachment/{Attachment.objects.get().pk}/change/",
            f"/admin/portal/series/{self.study.series.first().pk}/change/",
            f"/admin/portal/study/{self.study.pk}/change/",
        ]
        checked: set[str] = set()
        for page in pages:
            r = self.client.get(page)
            self.assertEqual(r.status_code, 200, page)
            self.assertNotIn("<select", r.content.decode(), page)  # shown, not offered to change
            for href in set(HREF.findall(r.content.decode())) - checked:
                checked.add(href)
                if href.startswith(SKIP):
                    continue
                with self.subTest(page=page, href=href):
                    self.assertNotEqual(self.client.get(href).status_code, 403)
        self.assertTrue(checked)

    def test_back_office_pages_name_the_portals_icon(self) -> None:
        """Without it the browser asks for /favicon.ico, which is not there (a 404 each page)."""
        self.login_back_office(self.alice)
        for url in ("/admin/", "/admin/portal/patient/"):
            with self.subTest(url=url):
                self.assertContains(self.client.get(url), 'rel="icon"')
