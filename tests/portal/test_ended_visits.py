"""A recipient whose visit ended (closed, timed out, Back afterwards) is told how to get back."""

from __future__ import annotations

from django.test import Client, TestCase


class EndedVisitTestCase(TestCase):
    def test_a_recipient_page_without_a_visit_says_to_open_the_link_again(self) -> None:
        # Back after "Close the shared images" said only "Check the address you were given".
        for path in ("/s/home/", "/s/software/", "/u/files/"):
            with self.subTest(path=path):
                r = Client().get(path)
                self.assertEqual(r.status_code, 404 if path != "/u/files/" else 405)
        r = Client().get("/s/home/")
        self.assertContains(r, "open the link again from your email", status_code=404)
        r = Client().get("/no/such/page/")
        self.assertNotContains(r, "your images", status_code=404)

    def test_the_staff_sign_in_a_viewer_sends_to_says_who_it_is_for(self) -> None:
        # A patient's viewer page, reopened after the visit ended, led to a bare staff sign-in.
        r = Client().get("/viewer/studies/6c7c6f53-7a43-4a4b-9d6c-4f4f8e8f1b2a/", follow=True)
        self.assertContains(r, "Staff sign-in")
        self.assertContains(r, "Were you sent a link to your images?")
        self.assertNotContains(Client().get("/login/"), "Were you sent a link")
