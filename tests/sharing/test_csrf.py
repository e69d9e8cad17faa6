from __future__ import annotations

import re

from django.test import Client

from tests.sharing.helpers import BIRTH, PASSWORD, ShareTestCase


class NoReferrerCsrfTestCase(ShareTestCase):
    """Recipient forms send Origin: null and no Referer (no-referrer policy) yet keep CSRF."""

    def setUp(self) -> None:
        super().setUp()
        self.browser = Client(enforce_csrf_checks=True)
        self.browser.get(self.issued.path)
        page = self.browser.get("/s/").content.decode()
        self.token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]

    def post(self, token: str | None = None, **headers):
        data = {"password": PASSWORD, "birth_date": BIRTH}
        if token is not None:
            data["csrfmiddlewaretoken"] = token
        return self.browser.post("/s/", data, **headers)

    def test_same_origin_form_with_null_origin_passes(self) -> None:
        r = self.post(self.token, HTTP_ORIGIN="null", HTTP_SEC_FETCH_SITE="same-origin")
        self.assertEqual(r.status_code, 303)

    def test_https_without_referer_passes_when_same_origin(self) -> None:
        r = self.post(
            self.token, secure=True, HTTP_ORIGIN="null", HTTP_SEC_FETCH_SITE="same-origin"
        )
        self.assertEqual(r.status_code, 303)

    def test_it_still_refuses(self) -> None:
        cases = {
            "no token": ({"HTTP_ORIGIN": "null", "HTTP_SEC_FETCH_SITE": "same-origin"}, None),
            "cross site": ({"HTTP_ORIGIN": "null", "HTTP_SEC_FETCH_SITE": "cross-site"}, "t"),
            "other origin": ({"HTTP_ORIGIN": "https://evil.example"}, "t"),
            "https no referer": ({"secure": True}, "t"),
        }
        for name, (headers, token) in cases.items():
            with self.subTest(name=name):
                r = self.post(self.token if token else None, **headers)
                self.assertEqual(r.status_code, 403)
