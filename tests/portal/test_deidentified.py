"""A de-identified copy of a study: PS3.15 Annex E basic profile, options per practice."""

from __future__ import annotations

import io
import zipfile

import pydicom

from audit.models import AccessEvent, Action
from portal import vault
from portal.ingest import ingest_files
from portal.models import Instance, Study
from tests.base import BaseTestCase
from tests.dicom_samples import identify, sample, to_bytes

PHI = (b"Fidelity", b"Frances", b"DEID-7", b"19700101", b"20040119")


class DeidentifiedTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        files = {}
        for n, burned in ((1, "NO"), (2, "YES")):
            ds = identify(sample("CT_small.dcm"), n, patient_id="DEID-7", study="3")
            ds.BurnedInAnnotation = burned
            ds.InstitutionName = "Smile Dental Clinic"
            ds.add_new(0x00091001, "LO", "private note")
            files[f"IM{n}.dcm"] = to_bytes(ds)
        self.originals = files
        with self.captureOnCommitCallbacks(execute=False):
            ingest_files([(k, io.BytesIO(v)) for k, v in files.items()], practice=self.practice)
        self.deid = Study.objects.get(patient__patient_id="DEID-7")
        self.login(self.alice)

    def download(self) -> zipfile.ZipFile:
        r = self.client.get(f"/studies/{self.deid.code}/deidentified.zip")
        self.assertEqual(r.status_code, 200)
        self.assertIn("no-store", r["Cache-Control"])
        return zipfile.ZipFile(io.BytesIO(b"".join(r.streaming_content)))

    def test_it_removes_identifying_values_and_keeps_the_image(self) -> None:
        zf = self.download()
        ds = pydicom.dcmread(io.BytesIO(zf.read("DICOM/IM000001")))
        data = zf.read("DICOM/IM000001")
        for needle in (*PHI, b"Smile Dental Clinic", b"private note"):
            self.assertNotIn(needle, data, needle)
        self.assertEqual(ds.PatientIdentityRemoved, "YES")
        self.assertEqual(ds.DeidentificationMethodCodeSequence[0].CodeValue, "113100")
        self.assertNotEqual(ds.StudyInstanceUID, self.deid.study_uid)
        original = pydicom.dcmread(io.BytesIO(self.originals["IM1.dcm"]))
        self.assertEqual(ds.PixelData, original.PixelData)
        self.assertIn("DICOMDIR", zf.namelist())

    def test_burned_in_annotation_is_left_out_with_the_reason(self) -> None:
        zf = self.download()
        self.assertNotIn("DICOM/IM000002", zf.namelist())
        readme = zf.read("README.txt").decode()
        self.assertIn("1 of 2 files included", readme)
        self.assertIn("burned-in annotation", readme)

    def test_burned_in_annotation_is_flagged_when_kept(self) -> None:
        self.practice.deid_clean_pixels = False
        self.practice.save()
        zf = self.download()
        self.assertIn("DICOM/IM000002", zf.namelist())
        self.assertIn("file 2: included, but its pixels may show", zf.read("README.txt").decode())

    def test_dates_follow_the_practice_option(self) -> None:
        self.practice.deid_dates = "shift"
        self.practice.save()
        ds = pydicom.dcmread(io.BytesIO(self.download().read("DICOM/IM000001")))
        self.assertTrue(ds.StudyDate and ds.StudyDate < "20040119")
        self.assertEqual(ds.DeidentificationMethodCodeSequence[-1].CodeValue, "113107")

    def test_the_original_is_never_altered_and_the_copy_is_audited(self) -> None:
        self.download()
        for instance in Instance.objects.filter(series__study=self.deid):
            name = "IM1.dcm" if instance.sop_instance_uid.endswith(".1.1") else "IM2.dcm"
            self.assertEqual(vault.read_bytes(instance.blob), self.originals[name])
        event = AccessEvent.objects.filter(action=Action.DOWNLOAD, patient=self.deid.patient)
        self.assertEqual(event.get().detail["deidentified"], True)

    def test_it_checks_practice(self) -> None:
        self.login(self.charlie)
        r = self.client.get(f"/studies/{self.deid.code}/deidentified.zip")
        self.assertEqual(r.status_code, 404)

    def test_anonymous_is_redirected(self) -> None:
        self.client.logout()
        r = self.client.get(f"/studies/{self.deid.code}/deidentified.zip")
        self.assertEqual(r.status_code, 302)
