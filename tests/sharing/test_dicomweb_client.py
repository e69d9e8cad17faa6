"""dicomweb-client, as a referrer's software would use it, against a live portal and one share."""

from __future__ import annotations

import io
from datetime import date

import pydicom
from dicomweb_client.api import DICOMwebClient
from django.test import LiveServerTestCase

from portal import vault
from portal.models import Instance, Patient, Practice, Role
from sharing.dicomweb.tokens import create_token
from sharing.models import ShareLink
from sharing.services import issue_link
from tests.base import make_ct_study, make_staff


class DicomwebClientTestCase(LiveServerTestCase):
    def setUp(self) -> None:
        self.practice = Practice.objects.create(slug="smile", name="Smile Dental")
        self.alice = make_staff("alice", self.practice, Role.ADMIN)
        self.pat = Patient.objects.create(
            practice=self.practice,
            patient_id="P-1001",
            name="Pat Example",
            birth_date=date(1980, 5, 17),
        )
        self.study = make_ct_study(self.pat, n=3)
        self.unshared = make_ct_study(self.pat, n=1, uid_root="1.2.826.0.1.3680043.8.498.9")
        share = issue_link(
            study=self.study,
            created_by=self.alice,
            recipient_kind=ShareLink.Recipient.PATIENT,
            password="amber-anchor-apple-arrow-12",
        ).share
        _, self.raw = create_token(share)
        self.client_ = DICOMwebClient(
            f"{self.live_server_url}/dicomweb", headers={"Authorization": f"Bearer {self.raw}"}
        )

    def originals(self) -> dict[str, bytes]:
        return {
            i.sop_instance_uid: vault.read_bytes(i.blob)
            for i in Instance.objects.filter(series__study=self.study)
        }

    def test_it_finds_the_shared_study_only(self) -> None:
        studies = self.client_.search_for_studies()
        self.assertEqual([s["0020000D"]["Value"][0] for s in studies], [self.study.study_uid])
        self.assertEqual(studies[0]["00201208"]["Value"], [3])
        series = self.client_.search_for_series(self.study.study_uid)
        self.assertEqual(len(series), 1)
        instances = self.client_.search_for_instances(self.study.study_uid)
        self.assertEqual(len(instances), 3)
        self.assertEqual(self.client_.search_for_series(search_filters={"Modality": "MR"}), [])

    def test_it_retrieves_the_originals_unchanged(self) -> None:
        originals = self.originals()
        got = self.client_.retrieve_study(self.study.study_uid)
        self.assertEqual(len(got), 3)
        for ds in got:
            original = pydicom.dcmread(io.BytesIO(originals[ds.SOPInstanceUID]))
            self.assertEqual(ds.PixelData, original.PixelData)
            self.assertEqual(ds.PatientID, "P-1001")

    def test_it_gives_metadata_frames_and_rendered_images(self) -> None:
        uid = next(iter(self.originals()))
        instance = Instance.objects.get(sop_instance_uid=uid)
        series_uid = instance.series.series_uid
        meta = self.client_.retrieve_instance_metadata(self.study.study_uid, series_uid, uid)
        self.assertEqual(meta["00100020"]["Value"], ["P-1001"])
        self.assertIn("BulkDataURI", meta["7FE00010"])
        frames = self.client_.retrieve_instance_frames(self.study.study_uid, series_uid, uid, [1])
        original = pydicom.dcmread(io.BytesIO(vault.read_bytes(instance.blob)))
        self.assertEqual(frames[0], original.PixelData)
        jpeg = self.client_.retrieve_instance_rendered(self.study.study_uid, series_uid, uid)
        self.assertTrue(jpeg.startswith(b"\xff\xd8"))

    def test_it_refuses_a_study_outside_the_share(self) -> None:
        from requests.exceptions import HTTPError

        with self.assertRaises(HTTPError) as caught:
            self.client_.retrieve_study(self.unshared.study_uid)
        self.assertEqual(caught.exception.response.status_code, 404)
