"""Pages for someone without a session make the browser forget what the viewer kept."""

from __future__ import annotations

from tests.sharing.helpers import ShareTestCase

FORGET = "portal/forget"


class ForgetInBrowserTestCase(ShareTestCase):
    def test_the_verification_and_sign_in_pages_forget(self) -> None:
        self.open_link()
        self.assertContains(self.client.get("/s/"), FORGET)
        self.assertContains(self.client.get("/login/"), FORGET)

    def test_closing_the_images_forgets(self) -> None:
        self.sign_in()
        self.assertContains(self.client.post("/s/end/"), FORGET)

    def test_a_revoked_link_forgets(self) -> None:
        self.sign_in()
        self.share.revoked_at = self.share.created_at
        self.share.save(update_fields=["revoked_at"])
        home = self.client.get("/s/home/")
        self.assertEqual(home.status_code, 303)
        response = self.client.get(home["Location"])
        self.assertContains(response, "can no longer be used", status_code=410)
        self.assertContains(response, FORGET, status_code=410)

    def test_the_recipient_home_does_not(self) -> None:
        self.sign_in()
        self.assertNotContains(self.client.get("/s/home/"), FORGET)
