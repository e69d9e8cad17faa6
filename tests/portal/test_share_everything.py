"""Everything a patient has can be shared, and the share form helps the front desk."""

from __future__ import annotations

import re

from audit.models import AccessEvent, Action
from portal import vault
from portal.demo import phantom
from portal.models import Attachment
from sharing.models import ShareLink
from tests.base import BaseTestCase, make_ct_study
from tests.sharing.helpers import BIRTH, PASSWORD


class ShareEverythingTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.practice.front_desk_views_images = True
        self.practice.save()
        self.pat.email = "pat@example.org"
        self.pat.save()
        # A photo uploaded for the patient without a study.
        self.loose = Attachment.objects.create(
            practice=self.practice, patient=self.pat, kind=Attachment.Kind.PHOTO,
            content_type="image/jpeg", title="Smile", original_name="smile.jpg",
            blob=vault.store_bytes(phantom.make_photo_jpeg(seed=3, size=(64, 48))),
        )  # fmt: skip
        self.login(self.bob)

    def post(self, **extra):
        data = {"recipient_kind": "patient", "expires_in_days": 7, "password": PASSWORD,
                "allow_download": "on"}  # fmt: skip
        data.update(extra)
        return self.client.post(f"/studies/{self.study.code}/share/", data)

    def test_an_item_without_a_study_can_be_chosen_on_its_own(self) -> None:
        page = self.client.get(f"/studies/{self.study.code}/")
        self.assertContains(page, f'value="{self.loose.code}"')
        self.assertContains(page, "Smile (not filed under a study)")
        self.assertEqual(self.post(attachments=[str(self.loose.code)]).status_code, 200)
        share = ShareLink.objects.get()
        self.assertEqual(list(share.attachments.all()), [self.loose])
        self.assertEqual(list(share.series.all()), [])

    def test_the_recipient_sees_the_item_shared_on_its_own(self) -> None:
        r = self.post(attachments=[str(self.loose.code)])
        path = r.context["issued"].path
        recipient = self.client_class()
        recipient.get(path)
        day, month, year = BIRTH.split("-")[2], BIRTH.split("-")[1], BIRTH.split("-")[0]
        recipient.post("/s/", {"password": PASSWORD, "birth_day": day,
                               "birth_month": str(int(month)), "birth_year": year})  # fmt: skip
        home = recipient.get("/s/home/")
        self.assertContains(home, f"/viewer/attachments/{self.loose.code}/thumbnail.jpg")
        viewer = recipient.get(f"/viewer/studies/{self.study.code}/")
        self.assertContains(viewer, f'data-code="{self.loose.code}"')
        self.assertEqual(
            recipient.get(f"/s/download/attachments/{self.loose.code}").status_code, 200
        )

    def test_an_item_without_a_study_can_be_filed_under_one(self) -> None:
        page = self.client.get(f"/patients/{self.pat.code}/")
        self.assertContains(page, f'action="/attachments/{self.loose.code}/study/"')
        r = self.client.post(f"/attachments/{self.loose.code}/study/", {"study": self.study.code})
        self.assertRedirects(r, f"/patients/{self.pat.code}/", fetch_redirect_response=False)
        self.loose.refresh_from_db()
        self.assertEqual(self.loose.study, self.study)
        self.assertTrue(AccessEvent.objects.filter(action=Action.PATIENT_CHANGE).exists())

    def test_filing_refuses_another_patients_study(self) -> None:
        from portal.models import Patient

        other = Patient.objects.create(practice=self.practice, patient_id="P-2", name="Bea")
        theirs = make_ct_study(other, uid_root="1.2.826.0.1.3680043.8.498.9")
        self.client.post(f"/attachments/{self.loose.code}/study/", {"study": theirs.code})
        self.loose.refresh_from_db()
        self.assertIsNone(self.loose.study)

    def test_filing_checks_practice_and_method(self) -> None:
        url = f"/attachments/{self.loose.code}/study/"
        self.assertEqual(self.client.get(url).status_code, 405)
        self.login(self.charlie)
        self.assertEqual(self.client.post(url, {"study": self.study.code}).status_code, 404)

    def test_the_form_fills_in_the_email_on_file(self) -> None:
        page = self.client.get(f"/studies/{self.study.code}/")
        self.assertContains(page, 'value="pat@example.org"')
        self.assertContains(page, 'data-patient-email="pat@example.org"')
        referrer = self.client.get(f"/studies/{self.study.code}/?for=referrer")
        self.assertNotContains(referrer, 'value="pat@example.org"')

    def test_errors_are_listed_at_the_top_and_take_the_focus(self) -> None:
        r = self.post(recipient_kind="referrer", expires_in_days=999, recipient_email="")
        self.assertEqual(r.status_code, 400)
        page = r.content.decode()
        box = re.search(r'<div class="error-box" role="alert" id="share-errors"[^>]*>', page)[0]
        self.assertIn("autofocus", box)
        self.assertLess(page.index('id="share-errors"'), page.index('name="recipient_kind"'))
        self.assertIn('href="#id_recipient_email"', page)
        self.assertIn('href="#id_expires_in_days"', page)
