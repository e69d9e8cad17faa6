"""Download plans: a share's ZIP layout is worked out once, kept sealed, and renewed on change."""

from __future__ import annotations

import io
import zipfile
from unittest import mock

import pydicom
from django.core.files.storage import storages

from portal import vault
from portal.compliance.retention import shred_study
from portal.models import Instance
from sharing import plans
from sharing.models import DownloadPlan
from tests.sharing.helpers import ShareTestCase, add_attachments


class DownloadPlanTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        add_attachments(self.study)
        self.sign_in()

    def _zip(self) -> zipfile.ZipFile:
        r = self.client.get("/s/download/share.zip")
        self.assertEqual(r.status_code, 200)
        body = b"".join(r.streaming_content)
        self.assertEqual(len(body), int(r["Content-Length"]))
        return zipfile.ZipFile(io.BytesIO(body))

    def test_issuing_a_link_prepares_its_download(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            issued = self.issue()
        self.assertTrue(DownloadPlan.objects.filter(scope=f"share:{issued.share.code}").exists())

    def test_a_second_download_does_not_rebuild_the_dicomdir(self) -> None:
        first = self._zip()
        with mock.patch.object(plans, "archive_extras", side_effect=AssertionError("rebuilt")):
            second = self._zip()
        self.assertEqual(first.namelist(), second.namelist())
        self.assertEqual(first.read("DICOMDIR"), second.read("DICOMDIR"))

    def test_the_plan_is_stored_encrypted(self) -> None:
        self._zip()
        plan = DownloadPlan.objects.get(scope=f"share:{self.share.code}")
        with storages["vault"].open(plan.blob.storage_name) as fh:
            stored = fh.read()
        self.assertNotIn(b"DICOMDIR", stored)
        self.assertNotIn(self.study.patient.name.encode(), stored)

    def test_a_file_added_to_the_study_is_in_the_next_download(self) -> None:
        before = self._zip()
        old = DownloadPlan.objects.get(scope=f"share:{self.share.code}")
        existing = Instance.objects.filter(series__study=self.study).first()
        ds = pydicom.dcmread(io.BytesIO(vault.read_bytes(existing.blob)))
        ds.SOPInstanceUID += ".77"
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        buf.seek(0)
        Instance.objects.create(
            practice=existing.practice, series=existing.series,
            sop_instance_uid=ds.SOPInstanceUID, sop_class_uid=existing.sop_class_uid,
            transfer_syntax_uid=existing.transfer_syntax_uid, blob=vault.store(buf),
        )  # fmt: skip
        after = self._zip()
        self.assertEqual(len(after.namelist()), len(before.namelist()) + 1)
        old.blob.refresh_from_db()
        self.assertIsNone(old.blob.wrapped_key)  # the superseded plan is shredded

    def test_a_damaged_plan_is_rebuilt(self) -> None:
        self._zip()
        plan = DownloadPlan.objects.get(scope=f"share:{self.share.code}")
        path = storages["vault"].path(plan.blob.storage_name)
        with open(path, "r+b") as fh:
            fh.seek(40)
            byte = fh.read(1)
            fh.seek(40)
            fh.write(bytes([byte[0] ^ 0xFF]))
        with self.assertLogs("sharing.plans", "WARNING"):
            names = self._zip().namelist()
        self.assertIn("DICOMDIR", names)

    def test_shredding_the_study_shreds_its_plans(self) -> None:
        self._zip()
        blob = DownloadPlan.objects.get(scope=f"share:{self.share.code}").blob
        shred_study(self.study)
        blob.refresh_from_db()
        self.assertIsNone(blob.wrapped_key)


class DicomdirFromFilesTestCase(ShareTestCase):
    """The DICOMDIR says what the files say, whatever the records show staff."""

    def setUp(self) -> None:
        super().setUp()
        # The record's display name and study details differ from the files' own values.
        self.pat.name = "Patricia Example-Jones"
        self.pat.save()
        self.study.description = "Renamed by staff"
        self.study.study_date = None
        self.study.save()
        self.study.series.update(number=7, modality="OT")
        self.sign_in()

    def records(self) -> dict[str, pydicom.Dataset]:
        r = self.client.get("/s/download/share.zip")
        body = zipfile.ZipFile(io.BytesIO(b"".join(r.streaming_content)))
        dicomdir = pydicom.dcmread(io.BytesIO(body.read("DICOMDIR")))
        return {rec.DirectoryRecordType: rec for rec in dicomdir.DirectoryRecordSequence}

    def test_patient_study_and_series_values_come_from_the_files(self) -> None:
        records = self.records()
        self.assertEqual(str(records["PATIENT"].PatientName), "Pat^Example")
        self.assertEqual(records["PATIENT"].PatientID, "P-1001")
        self.assertEqual(records["STUDY"].StudyDescription, "e+1")
        self.assertEqual(records["STUDY"].StudyDate, "20040119")
        self.assertEqual(records["SERIES"].Modality, "CT")
        self.assertEqual(records["SERIES"].SeriesNumber, 1)

    def test_a_header_longer_than_the_first_read_is_read_whole(self) -> None:
        with mock.patch("viewer.tags.HEAD", 64):
            records = self.records()
        self.assertEqual(str(records["PATIENT"].PatientName), "Pat^Example")
