"""The upload page and its batches: ingest once all bytes arrived, per-file report."""

from __future__ import annotations

import base64
import io
from unittest import mock

import pydicom
from django.core.files.storage import storages
from django.test import override_settings
from django.utils import timezone
from pydicom.data import get_testdata_file

from audit.models import AccessEvent, Action
from portal.celery import app
from portal.models import StoredObject, Study, UploadBatch, UploadChunk
from portal.workspace import upload_batches
from tests.base import BaseTestCase

TUS = {"Tus-Resumable": "1.0.0"}


def dicom_bytes(uid: str) -> bytes:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientName = "Upload^Una"
    ds.PatientID = "U-77"
    ds.StudyInstanceUID = f"{uid}.1"
    ds.SeriesInstanceUID = f"{uid}.1.1"
    ds.SOPInstanceUID = f"{uid}.1.1.1"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


class UploadSteps:
    """Open a batch and send files into it the way upload.js does."""

    def _batch(self) -> str:
        r = self.client.post("/upload/batches/")
        self.assertEqual(r.status_code, 201)
        return r.json()["batch"]

    def _send(self, batch: str, name: str, data: bytes, *, upto: int | None = None) -> str:
        b64 = base64.b64encode
        meta = f"relativePath {b64(name.encode()).decode()},batch {b64(batch.encode()).decode()}"
        r = self.client.post(
            "/upload/tus/",
            headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": meta},
        )
        url = r["Location"]
        self.client.patch(
            url,
            data[:upto],
            content_type="application/offset+octet-stream",
            headers={**TUS, "Upload-Offset": "0"},
        )
        return url


class UploadTestCase(UploadSteps, BaseTestCase):
    def test_it_answers_404_for_a_malformed_patient(self) -> None:
        self.login(self.bob)
        self.assertEqual(self.client.get("/upload/?patient=not-a-uuid").status_code, 404)
        r = self.client.post("/upload/batches/", {"patient": "not-a-uuid"})
        self.assertEqual(r.status_code, 404)

    def test_it_shows_the_drop_zone(self) -> None:
        self.login(self.bob)
        r = self.client.get("/upload/")
        self.assertContains(r, 'id="dropzone"')
        self.assertContains(r, "portal/upload.js")
        self.assertContains(r, "webkitdirectory")

    def test_it_ingests_a_batch_and_reports_per_file(self) -> None:
        self.login(self.bob)
        batch = self._batch()
        self._send(batch, "scan/one.dcm", dicom_bytes("1.2.826.0.1.3680043.8.498.77"))
        self._send(batch, "scan/notes.txt", b"not an image at all\n" * 10)
        staged = list(UploadChunk.objects.values_list("blob__storage_name", flat=True))
        r = self.client.post(f"/upload/batches/{batch}/finish/")
        self.assertEqual(r.status_code, 200)
        files = {f["name"]: f for f in r.json()["files"]}
        self.assertEqual(files["scan/one.dcm"]["status"], "stored")
        self.assertEqual(files["scan/notes.txt"]["status"], "rejected")
        self.assertTrue(files["scan/notes.txt"]["reason"])
        study = Study.objects.get(study_uid="1.2.826.0.1.3680043.8.498.77.1")
        self.assertEqual(r.json()["studies"][0]["url"], f"/studies/{study.code}/")
        self.assertFalse(UploadChunk.objects.exists())
        self.assertFalse(StoredObject.objects.filter(storage_name__in=staged).exists())
        self.assertFalse(any(storages["vault"].exists(name) for name in staged))

    def test_it_waits_until_every_byte_arrived(self) -> None:
        self.login(self.bob)
        batch = self._batch()
        self._send(batch, "a.dcm", dicom_bytes("1.2.826.0.1.3680043.8.498.78"), upto=100)
        r = self.client.post(f"/upload/batches/{batch}/finish/")
        self.assertEqual(r.status_code, 409)
        self.assertFalse(
            Study.objects.filter(study_uid__startswith="1.2.826.0.1.3680043.8.498.78").exists()
        )

    def test_it_rejects_a_non_imaging_upload_clearly(self) -> None:
        self.login(self.bob)
        batch = self._batch()
        self._send(batch, "letter.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
        r = self.client.post(f"/upload/batches/{batch}/finish/")
        files = r.json()["files"]
        self.assertEqual(files[0]["status"], "rejected")
        self.assertTrue(files[0]["reason"])
        self.assertEqual(r.json()["studies"], [])

    def test_it_says_when_nothing_was_found(self) -> None:
        self.login(self.bob)
        batch = self._batch()
        self._send(batch, "empty.zip", b"PK\x05\x06" + b"\0" * 18)
        r = self.client.post(f"/upload/batches/{batch}/finish/")
        self.assertIn("No images", r.json()["error"])

    def test_it_checks_practice(self) -> None:
        self.login(self.bob)
        batch = self._batch()
        self.login(self.charlie)
        r = self.client.post(f"/upload/batches/{batch}/finish/")
        self.assertEqual(r.status_code, 404)
        self.assertTrue(AccessEvent.objects.filter(action=Action.ACCESS_DENIED).exists())
        self.assertEqual(self.client.get(f"/upload/?patient={self.pat.code}").status_code, 404)

    def test_it_redirects_anonymous(self) -> None:
        self.assertEqual(self.client.get("/upload/").status_code, 302)
        self.assertEqual(self.client.post("/upload/batches/").status_code, 302)
        self.assertFalse(UploadBatch.objects.exists())

    def test_it_refuses_get_on_batch_endpoints(self) -> None:
        self.login(self.bob)
        batch = self._batch()
        self.assertEqual(self.client.get("/upload/batches/").status_code, 405)
        self.assertEqual(self.client.get(f"/upload/batches/{batch}/finish/").status_code, 405)

    def test_it_audits_the_upload(self) -> None:
        self.login(self.bob)
        batch = self._batch()
        self._send(batch, "one.dcm", dicom_bytes("1.2.826.0.1.3680043.8.498.79"))
        self.client.post(f"/upload/batches/{batch}/finish/")
        event = AccessEvent.objects.get(action=Action.UPLOAD)
        self.assertEqual((event.user, event.detail["files"]), (self.bob, 1))

    def test_it_ingests_a_batch_once(self) -> None:
        self.login(self.bob)
        batch = self._batch()
        self._send(batch, "one.dcm", dicom_bytes("1.2.826.0.1.3680043.8.498.80"))
        UploadBatch.objects.filter(code=batch).update(finished_at=timezone.now())
        r = self.client.post(f"/upload/batches/{batch}/finish/")
        self.assertEqual(r.status_code, 409)
        self.assertFalse(Study.objects.filter(study_uid="1.2.826.0.1.3680043.8.498.80.1").exists())


class StagedUploadLimitsTestCase(UploadSteps, BaseTestCase):
    """One batch holds what one dropped archive may (files and bytes); one person's uploads
    not yet ingested hold at most PORTAL_UPLOAD_STAGED_MAX_BYTES. Each refusal says why."""

    def _create(self, batch: str, length: int):
        meta = (
            f"relativePath {base64.b64encode(b'a.dcm').decode()},batch "
            + base64.b64encode(batch.encode()).decode()
        )
        return self.client.post(
            "/upload/tus/", headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": meta}
        )

    @override_settings(PORTAL_MAX_ARCHIVE_MEMBERS=3, PORTAL_MAX_ARCHIVE_BYTES=10_000)
    def test_a_batch_holds_at_most_an_archives_files_and_bytes(self) -> None:
        self.login(self.bob)
        batch = self._batch()
        self.assertEqual([self._create(batch, 3000).status_code for _ in range(3)], [201] * 3)
        r = self._create(batch, 10)
        self.assertEqual(r.status_code, 413)
        self.assertIn(b"3 files", r.content)
        other = self._batch()
        self.assertEqual(self._create(other, 9000).status_code, 201)
        r = self._create(other, 1001)
        self.assertEqual(r.status_code, 413)
        self.assertIn(b"at most", r.content)

    @override_settings(PORTAL_UPLOAD_STAGED_MAX_BYTES=10_000)
    def test_one_persons_unfinished_uploads_are_bounded(self) -> None:
        self.login(self.bob)
        self.assertEqual(self._create(self._batch(), 8000).status_code, 201)
        r = self._create(self._batch(), 3000)
        self.assertEqual(r.status_code, 413)
        self.assertIn(b"not yet", r.content)
        self.login(self.alice)  # another person's room is their own
        self.assertEqual(self._create(self._batch(), 3000).status_code, 201)


class AssignedPatientsOnlyTestCase(UploadSteps, BaseTestCase):
    """A hygienist who sees assigned patients only cannot file images under anyone else."""

    def setUp(self) -> None:
        super().setUp()
        from portal.models import Patient, Role
        from tests.base import make_staff

        self.practice.hygienists_see_assigned_only = True
        self.practice.save()
        self.hy = make_staff("hy", self.practice, Role.HYGIENIST)
        self.mine = Patient.objects.create(
            practice=self.practice, patient_id="U-77", name="Upload Una"
        )
        self.mine.assigned_staff.add(self.hy)
        self.login(self.hy)

    def _upload(self, data: bytes) -> dict:
        batch = self._batch()
        self._send(batch, "scan.dcm", data)
        return self.client.post(f"/upload/batches/{batch}/finish/").json()

    def _file_of(self, patient_id: str, study_uid: str, sop: str) -> bytes:
        ds = pydicom.dcmread(io.BytesIO(dicom_bytes("1.2.826.0.1.3680043.8.498.78")))
        ds.PatientID, ds.StudyInstanceUID, ds.SOPInstanceUID = patient_id, study_uid, sop
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        return buf.getvalue()

    def test_a_file_of_a_patient_the_hygienist_cannot_see_is_refused(self) -> None:
        before = self.study.series.get().instances.count()
        uid = self.study.study_uid
        for sop in ("1.2.826.0.1.3680043.8.498.78.9", f"{uid}.1.1"):  # new, and a duplicate
            result = self._upload(self._file_of(self.pat.patient_id, uid, sop))
            self.assertEqual(result["files"][0]["status"], "rejected", sop)
            self.assertIn("cannot see", result["files"][0]["reason"])
            self.assertEqual(result["studies"], [])
        self.assertEqual(self.study.series.get().instances.count(), before)

    def test_a_file_of_an_assigned_patient_is_stored(self) -> None:
        data = self._file_of(
            "U-77", "1.2.826.0.1.3680043.8.498.78.5", "1.2.826.0.1.3680043.8.498.78.6"
        )
        result = self._upload(data)
        self.assertEqual(result["files"][0]["status"], "stored")
        self.assertEqual(Study.objects.get(study_uid__endswith="78.5").patient, self.mine)


class BackgroundIngestTestCase(UploadSteps, BaseTestCase):
    """With a real broker the finish request only queues the batch; the page polls for it."""

    def setUp(self) -> None:
        super().setUp()
        saved = app.conf.task_always_eager
        app.conf.task_always_eager = False  # the in-memory broker holds the message
        self.addCleanup(setattr, app.conf, "task_always_eager", saved)

    def _finished_batch(self, uid: str) -> tuple[str, UploadBatch]:
        self.login(self.bob)
        batch = self._batch()
        self._send(batch, "scan/one.dcm", dicom_bytes(uid))
        r = self.client.post(f"/upload/batches/{batch}/finish/", REMOTE_ADDR="203.0.113.9")
        self.assertEqual(r.status_code, 202)
        self.assertEqual(r.json()["state"], "processing")
        self.assertEqual(r.json()["status_url"], f"/upload/batches/{batch}/")
        return batch, UploadBatch.objects.get(code=batch)

    def _origin(self) -> upload_batches.Origin:
        return upload_batches.Origin(user_id=self.bob.pk, ip="203.0.113.9", user_agent="t")

    def test_the_page_polls_until_the_worker_has_read_the_batch(self) -> None:
        batch, row = self._finished_batch("1.2.826.0.1.3680043.8.498.81")
        r = self.client.get(f"/upload/batches/{batch}/")
        self.assertEqual(r.status_code, 202)
        self.assertFalse(Study.objects.filter(study_uid="1.2.826.0.1.3680043.8.498.81.1").exists())
        # A second click while the worker has it changes nothing.
        self.assertEqual(self.client.post(f"/upload/batches/{batch}/finish/").status_code, 409)

        upload_batches.run(row.pk, self._origin())  # what the worker does with the message

        r = self.client.get(f"/upload/batches/{batch}/")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.json()["state"], "done")
        self.assertEqual(r.json()["files"][0]["status"], "stored")
        study = Study.objects.get(study_uid="1.2.826.0.1.3680043.8.498.81.1")
        self.assertEqual(r.json()["studies"][0]["url"], f"/studies/{study.code}/")
        event = AccessEvent.objects.get(action=Action.UPLOAD)
        self.assertEqual((event.user, event.ip_address), (self.bob, "203.0.113.9"))
        self.assertEqual(event.practice, self.practice)

    def test_a_redelivered_message_does_not_ingest_twice(self) -> None:
        _batch, row = self._finished_batch("1.2.826.0.1.3680043.8.498.82")
        upload_batches.run(row.pk, self._origin())
        upload_batches.run(row.pk, self._origin())
        self.assertEqual(AccessEvent.objects.filter(action=Action.UPLOAD).count(), 1)

    def test_an_unexpected_failure_keeps_the_files_for_another_try(self) -> None:
        batch, row = self._finished_batch("1.2.826.0.1.3680043.8.498.83")
        with (
            mock.patch("portal.ingest.ingest_files", side_effect=OSError("disk went away")),
            self.assertLogs("portal.workspace.upload_batches", "ERROR") as logs,
        ):
            upload_batches.run(row.pk, self._origin())
        self.assertNotIn("disk went away", "\n".join(logs.output))
        r = self.client.get(f"/upload/batches/{batch}/")
        self.assertEqual((r.status_code, r.json()["state"]), (200, "open"))
        self.assertIn("Try again", r.json()["error"])
        self.assertTrue(UploadChunk.objects.exists())

        self.assertEqual(self.client.post(f"/upload/batches/{batch}/finish/").status_code, 202)
        upload_batches.run(row.pk, self._origin())
        r = self.client.get(f"/upload/batches/{batch}/")
        self.assertEqual((r.json()["state"], r.json()["files"][0]["status"]), ("done", "stored"))
        self.assertNotIn("error", r.json())
        self.assertFalse(UploadChunk.objects.exists())

    def test_only_the_uploader_sees_the_batch_status(self) -> None:
        batch, _row = self._finished_batch("1.2.826.0.1.3680043.8.498.84")
        self.login(self.alice)
        self.assertEqual(self.client.get(f"/upload/batches/{batch}/").status_code, 404)
        self.assertTrue(
            AccessEvent.objects.filter(
                action=Action.ACCESS_DENIED, detail__path_kind="upload-status"
            ).exists()
        )
