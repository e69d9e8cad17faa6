"""portal.ingest: DICOM, photos and PDFs become records; bad input is refused per file."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.test import override_settings
from pydicom.encaps import encapsulate

from audit.models import AccessEvent, Action
from portal import vault
from portal.ingest import ingest_files
from portal.models import Attachment, Instance, Patient, StoredObject, Study
from tests.base import BaseTestCase
from tests.portal.ingest_helpers import (
    ROOT,
    as_files,
    dicom_bytes,
    edited_dicom,
    jpeg_bytes,
    pdf_bytes,
    png_bytes,
    zip_bytes,
)


def _no_pixels(ds) -> None:  # noqa: ANN001
    del ds.PixelData


def _half_pixels(ds) -> None:  # noqa: ANN001
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]


def _mpeg2(ds) -> None:  # noqa: ANN001
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    ds.PixelData = encapsulate([b"\x00" * 10])
    ds["PixelData"].VR = "OB"


def _no_fragments(ds) -> None:  # noqa: ANN001
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"
    ds.PixelData = b"\xfe\xff\x00\xe0\x00\x00\x00\x00\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True


def vault_files() -> list[Path]:
    root = Path(settings.STORAGES["vault"]["OPTIONS"]["location"])
    return [p for p in root.rglob("*") if p.is_file()]


class IngestTestCase(BaseTestCase):
    def ingest(self, files: dict[str, bytes], **kwargs):  # noqa: ANN201
        with self.captureOnCommitCallbacks(execute=False):
            return ingest_files(as_files(files), practice=self.practice, **kwargs)

    def test_it_stores_a_study_with_its_header_fields(self) -> None:
        report = self.ingest({f"scan/IM{i}.dcm": dicom_bytes(i) for i in (1, 2, 3)})
        self.assertEqual(report.lines()[0], "stored  scan/IM1.dcm")
        self.assertEqual((report.stored, report.rejected), (3, 0))
        study = Study.objects.get(study_uid=f"{ROOT}.1")
        self.assertEqual(report.studies, [study])
        self.assertEqual(study.modalities, "CT")
        patient = study.patient
        self.assertEqual(
            (patient.name, patient.patient_id, patient.sex), ("Zebulon Quixote", "ZQ-98765", "M")
        )
        self.assertEqual(str(patient.birth_date), "1975-02-03")
        inst = Instance.objects.get(sop_instance_uid=f"{ROOT}.1.1.2")
        self.assertEqual(
            (inst.rows, inst.columns, inst.bits_allocated, inst.instance_number), (128, 128, 16, 2)
        )
        self.assertEqual(inst.transfer_syntax_uid, "1.2.840.10008.1.2.1")
        self.assertEqual(len(inst.pixel_spacing), 2)
        self.assertEqual(len(inst.image_position), 3)
        self.assertEqual(len(inst.image_orientation), 6)
        self.assertEqual(inst.original_name, "scan/IM2.dcm")

    def test_it_rejects_each_bad_file_and_stores_the_rest(self) -> None:
        good = dicom_bytes(1)
        whole = dicom_bytes(91)
        bad = {
            "notdicom.dcm": (b"hello, this is not an image" * 20, "not a DICOM file"),
            "broken.dcm": (
                good[:132] + b"\x08\x00\x05\x00ZZ\xff\xff" + b"junk" * 60,
                "broken DICOM header",
            ),
            "nopixels.dcm": (edited_dicom(_no_pixels, 92), "no pixel data"),
            "empty.dcm": (b"", "empty file"),
            "half.dcm": (edited_dicom(_half_pixels, 94), "pixel data length does not match"),
            "cut.dcm": (whole[:-1000], "shorter than its pixel data declares"),
            "mz.dcm": (dicom_bytes(95, preamble=b"MZ\x90\x00"), "executable"),
            "html.dcm": (dicom_bytes(96, preamble=b"  <html><script>"), "markup"),
            "nofrag.dcm": (edited_dicom(_no_fragments, 97), "no fragments"),
        }
        files = {"good.dcm": good, **{name: data for name, (data, _) in bad.items()}}
        report = self.ingest(files)
        by_name = {f.name: f for f in report.files}
        self.assertEqual(by_name["good.dcm"].status, "stored")
        for name, (_, reason) in bad.items():
            with self.subTest(name):
                self.assertEqual(by_name[name].status, "rejected")
                self.assertIn(reason, by_name[name].reason)
                self.assertNotIn("\n", by_name[name].line())
        self.assertEqual(Instance.objects.filter(series__study__study_uid=f"{ROOT}.1").count(), 1)

    def test_rejected_files_leave_nothing_in_storage(self) -> None:
        before_rows, before_files = StoredObject.objects.count(), len(vault_files())
        report = self.ingest(
            {"half.dcm": edited_dicom(_half_pixels), "cut.dcm": dicom_bytes(5)[:-1000]}
        )
        self.assertEqual(report.rejected, 2)
        self.assertEqual(StoredObject.objects.count(), before_rows)
        self.assertEqual(len(vault_files()), before_files)

    def test_it_is_idempotent_on_sop_instance_uid(self) -> None:
        files = {f"IM{i}.dcm": dicom_bytes(i) for i in (1, 2)}
        self.ingest(files)
        objects = StoredObject.objects.count()
        report = self.ingest({**files, "IM3.dcm": dicom_bytes(3), "again.dcm": dicom_bytes(3)})
        statuses = [f.status for f in report.files]
        # The same instance twice in one batch: one copy is stored, whichever is read first.
        self.assertEqual(statuses[:2], ["duplicate", "duplicate"])
        self.assertEqual(sorted(statuses[2:]), ["duplicate", "stored"])
        self.assertEqual(StoredObject.objects.count(), objects + 1)
        self.assertEqual(Instance.objects.filter(series__study__study_uid=f"{ROOT}.1").count(), 3)
        self.assertEqual(Study.objects.filter(study_uid=f"{ROOT}.1").count(), 1)

    def test_no_part_of_the_batch_appears_when_storage_fails(self) -> None:
        real_seal, calls = vault.seal, []

        def flaky(src):  # noqa: ANN001, ANN202
            calls.append(1)
            if len(calls) == 3:
                raise OSError("disk full")
            return real_seal(src)

        before_rows, before_files = StoredObject.objects.count(), len(vault_files())
        files = {f"IM{i}.dcm": dicom_bytes(i, study="9") for i in range(1, 6)}
        with (
            mock.patch("portal.vault.blobs.seal", side_effect=flaky),
            mock.patch("portal.ingest.CHUNK_FILES", 2),  # the failure comes in the second chunk
            self.assertLogs("portal.ingest"),
        ):
            report = self.ingest(files)
        self.assertEqual(report.rejected, 5)
        self.assertIn("storage failed", report.files[0].reason)
        self.assertFalse(Study.objects.filter(study_uid=f"{ROOT}.9").exists())
        self.assertFalse(Patient.objects.filter(patient_id="ZQ-98765").exists())
        self.assertEqual(StoredObject.objects.count(), before_rows)
        self.assertEqual(len(vault_files()), before_files)

    def test_every_stored_file_reads_back_byte_identical(self) -> None:
        files = {f"IM{i}.dcm": dicom_bytes(i) for i in (1, 2)} | {"photo.jpg": jpeg_bytes()}
        self.ingest(files)
        blobs = {i.original_name: i.blob for i in Instance.objects.filter(practice=self.practice)}
        blobs |= {a.original_name: a.blob for a in Attachment.objects.all()}
        for name, data in files.items():
            with self.subTest(name):
                got = vault.read_bytes(blobs[name])
                self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_storage_holds_no_patient_name_or_id(self) -> None:
        self.ingest({f"IM{i}.dcm": dicom_bytes(i) for i in (1, 2)})
        for path in vault_files():
            data = path.read_bytes()
            for needle in (b"Quixote", b"Zebulon", b"ZQ-98765", b"19750203"):
                self.assertNotIn(needle, data, path.name)

    def test_sample_files_of_every_accepted_syntax_ingest(self) -> None:
        samples = [
            "JPEG2000.dcm",
            "MR_small_RLE.dcm",
            "JPEGLSNearLossless_08.dcm",
            "MR_small_jpeg_ls_lossless.dcm",
            "SC_rgb_jpeg_dcmtk.dcm",
            "SC_rgb_rle.dcm",
            "MR_small_bigendian.dcm",
            "MR_small_implicit.dcm",
            "image_dfl.dcm",
        ]
        files = {
            s: dicom_bytes(i, study="7", series=str(i), sample=s) for i, s in enumerate(samples)
        }
        report = self.ingest(files)
        self.assertEqual(report.lines(), [f"stored  {s}" for s in samples])
        syntaxes = set(Instance.objects.values_list("transfer_syntax_uid", flat=True))
        self.assertTrue(
            {"1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.50"} <= syntaxes
        )

    def test_a_study_of_another_patient_record_is_refused(self) -> None:
        data = edited_dicom(lambda ds: setattr(ds, "StudyInstanceUID", self.study.study_uid))
        report = self.ingest({"IM.dcm": data})
        self.assertEqual(report.files[0].reason, "study belongs to another patient record")
        self.assertEqual(self.study.series.get().instances.count(), 2)
        self.assertFalse(Patient.objects.filter(patient_id="ZQ-98765").exists())
        self.assertEqual(report.studies, [])

    def test_an_mpeg2_video_is_kept(self) -> None:
        report = self.ingest({"mpeg2.dcm": edited_dicom(_mpeg2, 93)})
        self.assertEqual(report.lines(), ["stored  mpeg2.dcm"])

    def test_photos_and_pdfs_attach_to_the_batch_patient(self) -> None:
        report = self.ingest(
            {"IM1.dcm": dicom_bytes(1), "smile.jpg": jpeg_bytes(), "report.pdf": pdf_bytes()}
        )
        self.assertEqual([f.kind for f in report.files], ["dicom", "photo", "pdf"])
        patient = Patient.objects.get(patient_id="ZQ-98765")
        kinds = dict(Attachment.objects.filter(patient=patient).values_list("kind", "content_type"))
        self.assertEqual(kinds, {"photo": "image/jpeg", "pdf": "application/pdf"})
        self.assertEqual(len(report.attachment_pks), 2)

    def test_a_photo_without_patient_waits_for_one(self) -> None:
        report = self.ingest({"smile.jpg": jpeg_bytes()})
        self.assertEqual(
            report.lines(),
            ["needs a patient  smile.jpg: no DICOM file of the batch decided the patient"],
        )
        self.assertFalse(Attachment.objects.exists())

    def test_a_png_named_pdf_is_stored_as_what_it_is(self) -> None:
        report = self.ingest(
            {"scan.pdf": png_bytes(), "fake.pdf": b"%PDF-1.4 no end"}, patient=self.pat
        )
        self.assertEqual((report.files[0].status, report.files[0].kind), ("stored", "photo"))
        self.assertIn("PNG image", report.files[0].reason)
        self.assertEqual(Attachment.objects.get(patient=self.pat).content_type, "image/png")
        self.assertEqual(report.files[1].status, "rejected")
        self.assertIn("%%EOF", report.files[1].reason)

    def test_a_damaged_photo_is_rejected(self) -> None:
        report = self.ingest(
            {"x.png": png_bytes()[:-20], "y.jpg": jpeg_bytes()[:200]}, patient=self.pat
        )
        self.assertEqual([f.status for f in report.files], ["rejected", "rejected"])
        self.assertFalse(Attachment.objects.exists())

    @override_settings(PORTAL_MAX_IMAGE_PIXELS=500)
    def test_it_refuses_decompression_bombs(self) -> None:
        report = self.ingest(
            {"a.png": png_bytes((30, 20)), "b.png": png_bytes((60, 60))}, patient=self.pat
        )
        for f in report.files:
            self.assertEqual(f.reason, "image has more pixels than allowed")

    def test_a_file_for_another_patient_is_refused(self) -> None:
        report = self.ingest({"IM1.dcm": dicom_bytes(1)}, patient=self.pat)
        self.assertEqual(
            report.files[0].reason, "Patient ID in the file differs from the chosen patient"
        )

    def test_it_audits_studies_attachments_and_rejections(self) -> None:
        self.ingest(
            {"IM1.dcm": dicom_bytes(1), "p.jpg": jpeg_bytes(), "x.dcm": b"junk"}, user=self.bob
        )
        study = Study.objects.get(study_uid=f"{ROOT}.1")
        event = AccessEvent.objects.get(action=Action.INGEST, object_code=str(study.code))
        self.assertEqual((event.detail["instances"], event.user), (1, self.bob))
        self.assertTrue(
            AccessEvent.objects.filter(action=Action.UPLOAD, patient=study.patient).exists()
        )
        failed = AccessEvent.objects.get(action=Action.INGEST, outcome="failed")
        self.assertEqual(failed.detail["rejected"], 1)
        self.assertNotIn("Quixote", str(failed.detail))

    def test_it_enqueues_previews_after_commit(self) -> None:
        with mock.patch("viewer.tasks.build_previews.delay") as delay:
            with self.captureOnCommitCallbacks(execute=True):
                report = ingest_files(as_files({"IM1.dcm": dicom_bytes(1)}), practice=self.practice)
        delay.assert_called_once_with(report.series_pks, [])
        self.assertEqual(len(report.series_pks), 1)

    def test_it_refuses_unsafe_zip_members(self) -> None:
        archive = zip_bytes(
            {
                "../../etc/passwd": b"root:x:0:0",
                "/abs/IM.dcm": dicom_bytes(2),
                "ok/IM1.dcm": dicom_bytes(1),
            }
        )
        report = self.ingest({"upload.zip": archive})
        lines = report.lines()
        self.assertIn(
            "rejected  upload.zip/../../etc/passwd: archive member path leaves the archive (..)",
            lines,
        )
        self.assertIn(
            "rejected  upload.zip//abs/IM.dcm: archive member has an absolute path", lines
        )
        self.assertIn("stored  upload.zip/ok/IM1.dcm", lines)

    @override_settings(PORTAL_MAX_ARCHIVE_BYTES=2**20)
    def test_it_refuses_zip_bombs(self) -> None:
        bomb = zip_bytes({"zeros.dcm": b"\x00" * (8 * 2**20)})
        report = self.ingest({"bomb.zip": bomb, "IM1.dcm": dicom_bytes(1)})
        self.assertEqual(
            report.lines(),
            ["rejected  bomb.zip: archive expands beyond the size limit", "stored  IM1.dcm"],
        )

    @override_settings(PORTAL_MAX_ARCHIVE_BYTES=2**20)
    def test_it_counts_real_bytes_when_a_zip_header_lies(self) -> None:
        data = bytearray(zip_bytes({"zeros.dcm": b"\x00" * (4 * 2**20)}))
        # Shrink the declared size in the central directory and the local header.
        big = (4 * 2**20).to_bytes(4, "little")
        data = data.replace(big, (1000).to_bytes(4, "little"))
        report = self.ingest({"liar.zip": bytes(data)})
        self.assertEqual(report.files[0].status, "rejected")
        self.assertEqual(
            StoredObject.objects.filter(instance__isnull=True, attachment__isnull=True).count(), 0
        )

    @override_settings(PORTAL_MAX_ARCHIVE_MEMBERS=2)
    def test_it_limits_archive_members(self) -> None:
        archive = zip_bytes({f"IM{i}.dcm": dicom_bytes(i) for i in (1, 2, 3)})
        report = self.ingest({"many.zip": archive})
        self.assertEqual(report.lines(), ["rejected  many.zip: archive has more than 2 files"])

    def test_a_zip_inside_a_zip_is_not_expanded(self) -> None:
        inner = zip_bytes({"IM1.dcm": dicom_bytes(1)})
        report = self.ingest({"outer.zip": zip_bytes({"inner.zip": inner})})
        self.assertEqual(
            report.lines(),
            ["rejected  outer.zip/inner.zip: archive inside an archive is not expanded"],
        )

    @override_settings(PORTAL_MAX_FILE_BYTES=1000)
    def test_it_limits_file_size(self) -> None:
        report = self.ingest({"IM1.dcm": dicom_bytes(1)})
        self.assertEqual(report.files[0].reason, "file is larger than allowed")
        self.assertEqual(os.path.basename(report.files[0].name), "IM1.dcm")

    def test_it_reads_a_file_only_through_read_seek_tell(self) -> None:
        class Staged:
            def __init__(self, data: bytes) -> None:
                self._f = io.BytesIO(data)

            def read(self, n: int = -1) -> bytes:
                return self._f.read(n)

            def seek(self, offset: int, whence: int = 0) -> int:
                return self._f.seek(offset, whence)

            def tell(self) -> int:
                return self._f.tell()

        files = [
            ("IM1.dcm", Staged(dicom_bytes(1))),
            ("p.png", Staged(png_bytes())),
            ("z.zip", Staged(zip_bytes({"IM2.dcm": dicom_bytes(2)}))),
        ]
        report = ingest_files(files, practice=self.practice)
        self.assertEqual([f.status for f in report.files], ["stored", "stored", "stored"])


class WorkerPoolTests(BaseTestCase):
    def test_workers_use_the_callers_connection_and_stop_at_the_first_failure(self) -> None:
        from django.db import connections

        from portal.ingest.pipeline import pool_thread_call, run

        mine = connections["default"]

        def fn(_: int, item: int) -> bool:
            if item == 3:
                raise ValueError("bad item")
            return connections["default"] is mine

        done, error, rest = run(fn, iter(range(10)), 1)
        self.assertEqual(done, [True, True, True])
        self.assertIsInstance(error, ValueError)
        self.assertEqual(rest, list(range(4, 10)))
        # The long-lived threads let go of the connection once the batch is over.
        self.assertFalse(pool_thread_call(lambda: connections["default"] is mine))
