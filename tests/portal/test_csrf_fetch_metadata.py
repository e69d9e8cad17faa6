"""Form posts from no-referrer pages pass CSRF only when the browser says same-origin."""

from __future__ import annotations

from django.test import Client

from tests.base import BaseTestCase


class FetchMetadataCsrfTestCase(BaseTestCase):
    def _post(self, site: str) -> int:
        client = Client(enforce_csrf_checks=True)
        client.get("/login/")
        token = client.cookies["portal_csrf"].value
        r = client.post(
            "/login/",
            {"csrfmiddlewaretoken": token, "username": "alice", "password": "wrong-password"},
            HTTP_ORIGIN="null",
            HTTP_SEC_FETCH_SITE=site,
        )
        return r.status_code

    def test_it_accepts_a_same_origin_post_with_a_null_origin(self) -> None:
        self.assertNotEqual(self._post("same-origin"), 403)

    def test_it_refuses_a_cross_site_post_with_a_null_origin(self) -> None:
        for site in ("cross-site", "same-site", "none"):
            with self.subTest(site=site):
                self.assertEqual(self._post(site), 403)
