"""Patient and study pages."""

from __future__ import annotations

from audit.models import AccessEvent, Action, Outcome
from tests.base import BaseTestCase


class StudyDetailTestCase(BaseTestCase):
    def test_it_shows_series_viewer_and_share_form(self) -> None:
        self.login(self.alice)
        r = self.client.get(f"/studies/{self.study.code}/")
        series = self.study.series.get()
        self.assertContains(r, f"/viewer/series/{series.code}/thumbnail.jpg")
        self.assertContains(r, f"/viewer/studies/{self.study.code}/")
        self.assertContains(r, f'action="/studies/{self.study.code}/share/"')

    def test_it_hides_pixels_from_front_desk_unless_allowed(self) -> None:
        self.login(self.bob)
        r = self.client.get(f"/studies/{self.study.code}/")
        self.assertNotContains(r, "Open viewer")
        self.practice.front_desk_views_images = True
        self.practice.save()
        self.assertContains(self.client.get(f"/studies/{self.study.code}/"), "Open viewer")

    def test_it_checks_practice(self) -> None:
        self.login(self.charlie)
        r = self.client.get(f"/studies/{self.study.code}/")
        self.assertEqual(r.status_code, 404)
        event = AccessEvent.objects.get(action=Action.ACCESS_DENIED)
        self.assertEqual((event.outcome, event.user), (Outcome.DENIED, self.charlie))

    def test_it_redirects_anonymous(self) -> None:
        r = self.client.get(f"/studies/{self.study.code}/")
        self.assertEqual(r.status_code, 302)
        self.assertTrue(r["Location"].startswith("/login/"))

    def test_it_audits_the_view(self) -> None:
        self.login(self.bob)
        self.client.get(f"/studies/{self.study.code}/")
        event = AccessEvent.objects.get(action=Action.VIEW_STUDY)
        self.assertEqual((event.patient, event.user), (self.pat, self.bob))

    def test_it_refuses_post(self) -> None:
        self.login(self.bob)
        self.assertEqual(self.client.post(f"/studies/{self.study.code}/").status_code, 405)


class PatientDetailTestCase(BaseTestCase):
    def test_it_lists_the_patients_studies(self) -> None:
        self.login(self.bob)
        r = self.client.get(f"/patients/{self.pat.code}/")
        self.assertContains(r, "Pat Example")
        self.assertContains(r, f"/studies/{self.study.code}/")

    def test_it_checks_practice(self) -> None:
        self.login(self.charlie)
        self.assertEqual(self.client.get(f"/patients/{self.pat.code}/").status_code, 404)
        self.assertTrue(AccessEvent.objects.filter(action=Action.ACCESS_DENIED).exists())

    def test_it_redirects_anonymous(self) -> None:
        self.assertEqual(self.client.get(f"/patients/{self.pat.code}/").status_code, 302)

    def test_it_audits_the_view(self) -> None:
        self.login(self.alice)
        self.client.get(f"/patients/{self.pat.code}/")
        self.assertEqual(AccessEvent.objects.get(action=Action.VIEW_STUDY).patient, self.pat)

    def test_it_refuses_post(self) -> None:
        self.login(self.bob)
        self.assertEqual(self.client.post(f"/patients/{self.pat.code}/").status_code, 405)
