"""Issuing a link from a study page: the token is shown once, never stored."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.contrib.auth.hashers import check_password
from django.core import mail
from django.utils import timezone

from audit.models import AccessEvent, Action
from sharing.models import ShareLink
from sharing.services import hash_token
from tests.base import BaseTestCase


class IssueShareTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        # Bob (front desk) may open images here, so he may share them too.
        self.practice.front_desk_views_images = True
        self.practice.save()

    def _post(self, **extra) -> object:
        data = {"recipient_kind": "patient", "expires_in_days": 7, "allow_download": "on"}
        data.update(extra)
        return self.client.post(f"/studies/{self.study.code}/share/", data)

    def test_it_issues_and_shows_the_link_once(self) -> None:
        self.login(self.bob)
        r = self._post()
        self.assertEqual(r.status_code, 200)
        share = ShareLink.objects.get()
        token = r.context["issued"].token
        self.assertEqual(share.token_hash, hash_token(token))
        self.assertContains(r, f"http://127.0.0.1:8000/s/{token}")
        self.assertContains(r, "<svg")
        self.assertTrue(check_password(r.context["password"], share.password_hash))
        self.assertNotContains(self.client.get(f"/studies/{self.study.code}/"), token)

    def test_the_created_page_and_handout_give_the_expiry_in_the_practices_time(self) -> None:
        # Auckland is 13 hours ahead of UTC in December: a date in UTC is often the wrong day.
        self.practice.time_zone = "Pacific/Auckland"
        self.practice.save()
        self.login(self.bob)
        r = self._post()
        local = timezone.localtime(ShareLink.objects.get().expires_at, ZoneInfo("Pacific/Auckland"))
        # A date alone read as the whole day: a dentist opening it that morning found it ended.
        said = f"{local.day} {local:%B %Y, %H:%M}"
        self.assertContains(r, f"Expires {said} ({local:%Z})")
        self.assertContains(r, f"works until <strong>{said}</strong> ({local:%Z})")

    def test_a_referrers_handout_speaks_to_the_referrer_and_names_every_step(self) -> None:
        self.login(self.bob)
        r = self._post(recipient_kind="referrer", recipient_email="dr.who@example.net")
        handout = r.content.decode().split('class="handout card"')[1]
        self.assertIn("Images shared with you by Smile Dental", handout)
        self.assertIn("6-digit code emailed to dr.who@example.net", handout)
        self.assertNotIn("Your images", handout)
        self.assertNotIn("your date of birth", handout)
        patient = self._post().content.decode().split('class="handout card"')[1]
        self.assertIn("Your images are ready to view online", patient)
        self.assertIn("your date of birth", patient)

    def test_reloading_the_created_page_does_not_issue_a_second_link(self) -> None:
        """A reload (or a double click) posts the same form again: one link, not two."""
        self.login(self.bob)
        page = self.client.get(f"/studies/{self.study.code}/")
        key = page.context["form"]["issue_key"].value()
        self.assertTrue(key)
        self.assertContains(page, f'name="issue_key" value="{key}"')
        first = self._post(issue_key=key)
        again = self._post(issue_key=key)
        self.assertEqual(ShareLink.objects.count(), 1)
        self.assertContains(again, "already created", status_code=409)
        self.assertNotContains(again, first.context["password"], status_code=409)
        # The next form is a new link.
        key = self.client.get(f"/studies/{self.study.code}/").context["form"]["issue_key"].value()
        self.assertEqual(self._post(issue_key=key).status_code, 200)
        self.assertEqual(ShareLink.objects.count(), 2)

    def test_a_refused_form_sent_again_fixed_issues_its_link(self) -> None:
        from unittest import mock

        from django.core.exceptions import ValidationError

        from sharing import services

        self.login(self.bob)
        self.assertEqual(self._post(issue_key="k-1", expires_in_days=99).status_code, 400)
        # Refused past the form's checks, by the service, after the key was recorded.
        refuse = mock.patch.object(services, "issue_link", side_effect=ValidationError("No."))
        with refuse:
            self.assertEqual(self._post(issue_key="k-1").status_code, 400)
        self.assertEqual(self._post(issue_key="k-1").status_code, 200)
        self.assertEqual(ShareLink.objects.count(), 1)

    def test_it_uses_a_typed_password_and_chosen_series(self) -> None:
        self.login(self.bob)
        series = self.study.series.get()
        r = self._post(password="typed-secret-9", series=[str(series.code)], max_downloads=2)
        share = ShareLink.objects.get()
        self.assertTrue(check_password("typed-secret-9", share.password_hash))
        self.assertEqual(list(share.series.all()), [series])
        self.assertEqual(share.max_downloads, 2)
        self.assertContains(r, "typed-secret-9")

    def test_it_refuses_expiry_past_the_practice_maximum(self) -> None:
        self.login(self.bob)
        r = self._post(expires_in_days=31)
        self.assertContains(r, "at most 30 days", status_code=400)
        self.assertFalse(ShareLink.objects.exists())

    def test_it_refuses_hostile_input(self) -> None:
        self.login(self.bob)
        cases = [
            {"recipient_kind": "admin"},
            {"recipient_kind": "referrer"},
            {"expires_in_days": 0},
            {"password": "short"},
            {"series": ["not-a-uuid"]},
        ]
        for case in cases:
            with self.subTest(case=case):
                self.assertEqual(self._post(**case).status_code, 400)
        self.assertFalse(ShareLink.objects.exists())

    def test_it_emails_the_link_when_asked(self) -> None:
        self.login(self.bob)
        r = self._post(send_email="on", recipient_email="pat@example.org")
        self.assertContains(r, "The link was emailed to pat@example.org")
        self.assertEqual(mail.outbox[0].to, ["pat@example.org"])
        self.assertNotIn(r.context["password"], mail.outbox[0].body)

    def test_it_checks_practice(self) -> None:
        self.login(self.charlie)
        self.assertEqual(self._post().status_code, 404)
        self.assertFalse(ShareLink.objects.exists())
        self.assertTrue(AccessEvent.objects.filter(action=Action.ACCESS_DENIED).exists())

    def test_it_redirects_anonymous(self) -> None:
        self.assertEqual(self._post().status_code, 302)
        self.assertFalse(ShareLink.objects.exists())

    def test_it_refuses_get(self) -> None:
        self.login(self.bob)
        self.assertEqual(self.client.get(f"/studies/{self.study.code}/share/").status_code, 405)

    def test_it_audits_the_issue(self) -> None:
        self.login(self.bob)
        self._post()
        event = AccessEvent.objects.get(action=Action.SHARE_ISSUE)
        self.assertEqual(event.user, self.bob)

    def test_it_refuses_an_issuer_who_may_not_open_the_images(self) -> None:
        """A front-desk member without image rights cannot get at them through a link."""
        self.practice.front_desk_views_images = False
        self.practice.save()
        self.login(self.bob)
        r = self._post(recipient_kind="referrer", recipient_email="bob.private@example.net")
        self.assertContains(r, "Your role does not open images", status_code=400)
        self.assertFalse(ShareLink.objects.exists())

    def test_it_refuses_a_link_addressed_to_the_practice_staff(self) -> None:
        self.login(self.alice)
        for email in ("bob@example.org", "BOB@Example.org"):
            with self.subTest(email=email):
                r = self._post(recipient_kind="referrer", recipient_email=email)
                self.assertContains(r, "a member of this practice", status_code=400)
        self.assertFalse(ShareLink.objects.exists())
