"""Links followed from another site: the Strict session cookie, and the page that re-opens."""

from __future__ import annotations

from django.conf import settings

from sharing.session import SESSION_KEY
from tests.sharing.helpers import ShareTestCase

CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}


class CrossSiteBounceTestCase(ShareTestCase):
    def _cross_site_get(self, path: str):
        self.client.cookies.pop(settings.SESSION_COOKIE_NAME, None)  # as the browser withholds it
        return self.client.get(path, headers=CROSS_SITE)

    def test_the_session_cookie_is_strict(self) -> None:
        r = self.open_link()
        cookie = r.cookies[settings.SESSION_COOKIE_NAME]
        self.assertEqual(cookie["samesite"], "Strict")
        self.assertTrue(cookie["httponly"])

    def test_the_token_url_is_served_not_reloaded(self) -> None:
        self.client.cookies.clear()
        r = self.client.get(f"/s/{self.issued.token}", headers=CROSS_SITE)
        self.assertEqual((r.status_code, r["Location"]), (303, "/s/"))
        self.assertIn(settings.SESSION_COOKIE_NAME, r.cookies)

    def test_the_hop_without_the_cookie_reloads_from_the_portal(self) -> None:
        self.open_link()
        session_cookie = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        r = self._cross_site_get("/s/")
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, '<meta http-equiv="refresh" content="0;url=/s/">')
        self.assertEqual(r["Cache-Control"], "no-store")
        self.assertIn("default-src", r["Content-Security-Policy"])
        self.assertNotIn("Set-Cookie", r.headers)
        # The reload is same-origin and carries the cookie: the link is still in the session.
        self.client.cookies[settings.SESSION_COOKIE_NAME] = session_cookie
        r = self.client.get("/s/", headers={"Sec-Fetch-Site": "same-origin"})
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, 'type="password"')
        self.assertIn(SESSION_KEY, self.client.session)

    def test_a_request_that_carries_the_cookie_is_not_reloaded(self) -> None:
        self.open_link()
        r = self.client.get("/s/", headers=CROSS_SITE)
        self.assertContains(r, 'type="password"')
        self.assertNotContains(r, "http-equiv")

    def test_only_navigations_are_reloaded(self) -> None:
        r = self.client.get("/s/", headers={**CROSS_SITE, "Sec-Fetch-Mode": "no-cors"})
        self.assertEqual(r.status_code, 404)
        r = self.client.post("/s/", headers=CROSS_SITE)
        self.assertNotContains(r, "http-equiv", status_code=r.status_code)

    def test_the_reload_stays_on_the_portal(self) -> None:
        r = self._cross_site_get("http://testserver//evil.example/phish?a=1&b=<x>")
        self.assertContains(r, 'content="0;url=/evil.example/phish?a=1&amp;b=%3Cx%3E"')
        self.assertNotContains(r, "//evil.example")
