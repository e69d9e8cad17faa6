"""The recipient of link A asks for every object URL of link B: always 404, always audited."""

from __future__ import annotations

from datetime import date

from django.urls import URLPattern

from audit.models import AccessEvent, Action, Outcome
from portal.models import Patient
from sharing import urls as sharing_urls
from tests.base import make_ct_study
from tests.sharing.helpers import ShareTestCase, add_attachments

# Asked for with POST: GET is refused before any object is looked up.
POST_ONLY = {"software-revoke"}


def object_urls(study, photo, pdf) -> dict[str, str]:
    """Every URL naming one object of a share, sharing and viewer alike."""
    from sharing.dicomweb.tokens import create_token

    series = study.series.get()
    instance = series.instances.first()
    token, _ = create_token(study.shares.first())
    return {
        "software-revoke": f"/s/software/tokens/{token.code}/revoke/",
        "download-series": f"/s/download/series/{series.code}.zip",
        "export-series": f"/s/download/series/{series.code}/pictures.zip?format=jpeg",
        "download-attachment": f"/s/download/attachments/{photo.code}",
        "download-attachment-pdf": f"/s/download/attachments/{pdf.code}",
        "download-instance": f"/s/download/instances/{instance.code}",
        "viewer-study": f"/viewer/studies/{study.code}/",
        "viewer-manifest": f"/viewer/series/{series.code}/manifest.json",
        "viewer-thumbnail": f"/viewer/series/{series.code}/thumbnail.jpg",
        "viewer-slice": f"/viewer/series/{series.code}/axial/0.jpg",
        "viewer-slice-png": f"/viewer/series/{series.code}/axial/0.png",
        "viewer-attachment-thumbnail": f"/viewer/attachments/{photo.code}/thumbnail.jpg",
        "viewer-attachment-file": f"/viewer/attachments/{photo.code}/file",
        "viewer-pdf-file": f"/viewer/attachments/{pdf.code}/file",
    }


class ScopeMatrixTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.photo_a, self.pdf_a = add_attachments(self.study)
        bea = Patient.objects.create(
            practice=self.practice, patient_id="P-2002", name="Bea Other",
            birth_date=date(1990, 1, 2),
        )  # fmt: skip
        self.study_b = make_ct_study(bea, uid_root="1.2.826.0.1.3680043.8.498.2")
        self.photo_b, self.pdf_b = add_attachments(self.study_b)
        self.link_b = self.issue(study=self.study_b)
        self.sign_in()  # as the recipient of link A

    def test_every_sharing_object_pattern_is_covered(self) -> None:
        names = {
            p.name
            for p in sharing_urls.urlpatterns
            if isinstance(p, URLPattern) and "code" in p.pattern.converters
        }
        self.assertLessEqual(names, set(object_urls(self.study_b, self.photo_b, self.pdf_b)))

    def test_link_a_gets_its_own_objects(self) -> None:
        urls = object_urls(self.study, self.photo_a, self.pdf_a)
        for name in ["download-series", "download-attachment", "download-instance"]:
            with self.subTest(name=name):
                self.assertEqual(self.client.get(urls[name]).status_code, 200)

    def test_link_a_gets_404_for_every_object_of_link_b(self) -> None:
        for name, url in object_urls(self.study_b, self.photo_b, self.pdf_b).items():
            with self.subTest(name=name):
                before = AccessEvent.objects.filter(action=Action.ACCESS_DENIED).count()
                r = (self.client.post if name in POST_ONLY else self.client.get)(url)
                self.assertEqual(r.status_code, 404)
                self.assertNotContains(r, "Bea", status_code=404)
                denied = AccessEvent.objects.filter(
                    action=Action.ACCESS_DENIED, outcome=Outcome.DENIED
                )
                self.assertEqual(denied.count(), before + 1)
                self.assertEqual(denied.first().share_code, self.share.code)

    def test_a_partial_share_hides_other_series_and_attachments(self) -> None:
        series = self.study.series.get()
        partial = self.issue(series=[series])
        self.client.logout()
        self.sign_in(partial)
        r = self.client.get(f"/s/download/attachments/{self.photo_a.code}")
        self.assertEqual(r.status_code, 404)
        self.assertEqual(self.client.get(f"/s/download/series/{series.code}.zip").status_code, 200)
