"""The "needs a patient" queue: files without a patient wait, staff attach them."""

from __future__ import annotations

import io

from audit.models import AccessEvent, Action
from portal.ingest import ingest_files
from portal.models import Attachment, Instance, PendingFile
from tests.base import BaseTestCase
from tests.portal.ingest_helpers import edited_dicom, png_bytes


class PendingTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        files = {
            "anon.dcm": edited_dicom(lambda ds: setattr(ds, "PatientID", ""), n=5),
            "photo.png": png_bytes(),
        }
        with self.captureOnCommitCallbacks(execute=False):
            ingest_files([(n, io.BytesIO(d)) for n, d in files.items()], practice=self.practice)
        self.anon = PendingFile.objects.get(kind="dicom")
        self.photo = PendingFile.objects.get(kind="photo")

    def test_it_lists_waiting_files(self) -> None:
        self.login(self.bob)
        r = self.client.get("/pending/")
        self.assertContains(r, "anon.dcm")
        self.assertContains(r, "photo.png")

    def test_staff_attach_a_dicom_file_to_a_patient(self) -> None:
        self.login(self.bob)
        r = self.client.post(f"/pending/{self.anon.code}/attach/", {"patient_id": "P-1001"})
        self.assertEqual(r.status_code, 302)
        instance = Instance.objects.get(sop_instance_uid__endswith=".5")
        self.assertEqual(instance.series.study.patient, self.pat)
        self.assertEqual(instance.blob_id, self.anon.blob_id)
        self.assertFalse(PendingFile.objects.filter(pk=self.anon.pk).exists())
        self.assertTrue(AccessEvent.objects.filter(action=Action.INGEST, patient=self.pat).exists())

    def test_staff_attach_a_photo(self) -> None:
        self.login(self.bob)
        self.client.post(f"/pending/{self.photo.code}/attach/", {"patient_id": "P-1001"})
        attachment = Attachment.objects.get(patient=self.pat)
        self.assertEqual((attachment.content_type, attachment.width), ("image/png", 32))

    def test_an_unknown_record_number_attaches_nothing(self) -> None:
        self.login(self.bob)
        r = self.client.post(f"/pending/{self.photo.code}/attach/", {"patient_id": "nobody"})
        self.assertEqual(r.status_code, 302)
        self.assertTrue(PendingFile.objects.filter(pk=self.photo.pk).exists())

    def test_it_checks_practice(self) -> None:
        self.login(self.charlie)
        r = self.client.post(f"/pending/{self.photo.code}/attach/", {"patient_id": "P-1001"})
        self.assertEqual(r.status_code, 404)
        self.assertNotContains(self.client.get("/pending/"), "photo.png")

    def test_anonymous_is_redirected(self) -> None:
        self.assertEqual(self.client.get("/pending/").status_code, 302)

    def test_get_on_attach_is_refused(self) -> None:
        self.login(self.bob)
        self.assertEqual(self.client.get(f"/pending/{self.photo.code}/attach/").status_code, 405)
