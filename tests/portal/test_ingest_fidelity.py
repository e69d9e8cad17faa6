"""Keep first: every well-formed DICOM file is stored; damaged ones are refused with a reason."""

from __future__ import annotations

import io
import tracemalloc

import pydicom
from django.core.management import call_command
from django.test import override_settings

from portal import vault
from portal.ingest import ingest_files
from portal.models import Attachment, Instance, PendingFile, Series
from tests.base import BaseTestCase
from tests.dicom_samples import bare_dataset, identify, sample, to_bytes
from tests.portal.ingest_helpers import (
    as_files,
    dicom_bytes,
    edited_dicom,
    jpeg_bytes,
    pdf_bytes,
    png_bytes,
)


def huge_jpeg_dicom() -> bytes:
    """A 2 KB JPEG-baseline DICOM declaring 16000 x 16000 pixels (issue 11, finding 3)."""

    def edit(ds) -> None:  # noqa: ANN001
        from pydicom.encaps import encapsulate

        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.50"
        ds.Rows = ds.Columns = 16000
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = encapsulate([jpeg_bytes()[:2000]])
        ds["PixelData"].VR = "OB"

    return edited_dicom(edit, n=77)


class KeepFirstTestCase(BaseTestCase):
    def ingest(self, files: dict[str, bytes], **kwargs):  # noqa: ANN201
        with self.captureOnCommitCallbacks(execute=False):
            return ingest_files(as_files(files), practice=self.practice, **kwargs)

    def test_12_bit_jpeg_extended_is_kept(self) -> None:
        report = self.ingest({"lossy.dcm": dicom_bytes(1, sample="JPEG-lossy.dcm")})
        self.assertEqual(report.lines(), ["stored  lossy.dcm"])

    def test_a_truncated_copy_of_a_stored_instance_is_rejected_not_a_duplicate(self) -> None:
        whole = dicom_bytes(1)
        self.ingest({"IM1.dcm": whole})
        report = self.ingest({"IM1 again.dcm": whole[: len(whole) - 4000]})
        self.assertEqual(
            report.lines(),
            ["rejected  IM1 again.dcm: file is shorter than its pixel data declares"],
        )

    def test_a_damaged_copy_within_one_batch_is_rejected_not_a_duplicate(self) -> None:
        whole = dicom_bytes(1)
        report = self.ingest({"a.dcm": whole, "b.dcm": whole[:-4000]})
        self.assertEqual([f.status for f in report.files], ["stored", "rejected"])

    def test_a_dataset_without_part_10_header_is_kept(self) -> None:
        for implicit in (True, False):
            with self.subTest(implicit=implicit):
                ds = identify(sample("CT_small.dcm"), 8 + implicit)
                data = bare_dataset(ds, implicit=implicit)
                report = self.ingest({"bare.dcm": data})
                self.assertEqual(report.lines(), ["stored  bare.dcm"])
                stored = vault.read_bytes(
                    Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID).blob
                )
                self.assertEqual(stored[128:132], b"DICM")
                self.assertTrue(stored.endswith(data))
                self.assertEqual(
                    pydicom.dcmread(io.BytesIO(stored)).SOPInstanceUID, ds.SOPInstanceUID
                )

    def test_objects_without_pixels_are_kept(self) -> None:
        files = {}
        for n, name in enumerate(["test-SR.dcm", "rtplan.dcm", "waveform_ecg.dcm"]):
            ds = sample(name)
            ds.PatientID = "NP-1"
            ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.92.{n}"
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            files[name] = to_bytes(ds)
        report = self.ingest(files)
        self.assertEqual([f.status for f in report.files], ["stored"] * 3, report.lines())


class PatientRuleTestCase(BaseTestCase):
    def ingest(self, files: dict[str, bytes], **kwargs):  # noqa: ANN201
        with self.captureOnCommitCallbacks(execute=False):
            return ingest_files(as_files(files), practice=self.practice, **kwargs)

    def test_a_png_named_pdf_is_named_for_what_it_is(self) -> None:
        self.ingest({"scan.pdf": png_bytes()}, patient=self.pat)
        attachment = Attachment.objects.get(patient=self.pat)
        self.assertEqual(attachment.original_name, "scan.png")

    def test_damaged_duplicates_do_not_choose_the_patient_of_a_photo(self) -> None:
        other = dicom_bytes(1, patient_id="OTHER-9", study="55")
        self.ingest({"IM1.dcm": other})
        report = self.ingest({"IM1.dcm": other[:-4000], "photo.png": png_bytes()})
        self.assertEqual(report.files[1].status, "needs a patient")
        self.assertFalse(Attachment.objects.exists())
        self.assertEqual(PendingFile.objects.get().original_name, "photo.png")

    def test_the_report_names_the_patient_of_a_photo(self) -> None:
        report = self.ingest({"IM1.dcm": dicom_bytes(1), "photo.jpg": jpeg_bytes()})
        self.assertEqual(report.files[1].status, "stored")
        self.assertIn("ZQ-98765", report.files[1].reason)

    def test_files_without_patient_id_wait_for_a_patient_in_one_pass(self) -> None:
        anonymous = edited_dicom(lambda ds: setattr(ds, "PatientID", ""), n=5)
        report = self.ingest(
            {"IM1.dcm": dicom_bytes(1), "anon.dcm": anonymous, "r.pdf": pdf_bytes()}
        )
        self.assertEqual([f.status for f in report.files], ["stored", "needs a patient", "stored"])
        pending = PendingFile.objects.get()
        self.assertEqual(pending.kind, "dicom")


class PixelLimitTestCase(BaseTestCase):
    def ingest(self, files: dict[str, bytes], **kwargs):  # noqa: ANN201
        with self.captureOnCommitCallbacks(execute=False):
            return ingest_files(as_files(files), practice=self.practice, **kwargs)

    def test_a_16000_square_dicom_is_rejected_before_any_decode(self) -> None:
        tracemalloc.start()
        report = self.ingest({"huge.dcm": huge_jpeg_dicom()})
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        self.assertEqual(report.files[0].status, "rejected")
        self.assertIn("more pixels than allowed", report.files[0].reason)
        self.assertLess(peak, 64 << 20)

    @override_settings(PORTAL_MAX_SERIES_PIXELS=128 * 128 * 3)
    def test_a_series_past_its_pixel_limit_is_rejected(self) -> None:
        files = {f"IM{n}.dcm": dicom_bytes(n) for n in range(1, 6)}
        report = self.ingest(files)
        # Workers run in parallel, so which two files come last is not fixed.
        self.assertEqual((report.stored, report.rejected), (3, 2), report.lines())
        reasons = {f.reason for f in report.files if f.status == "rejected"}
        self.assertEqual(reasons, {"series has more pixels than allowed"})


class PreambleTestCase(BaseTestCase):
    def test_markup_behind_nul_whitespace_or_a_bom_is_refused(self) -> None:
        for prefix in (b"\x00\x00\x00", b" \r\n\t", b"\xef\xbb\xbf", b"\x00\xef\xbb\xbf  "):
            with self.subTest(prefix=prefix):
                data = dicom_bytes(1, preamble=prefix + b"<html><script>x()</script>")
                with self.captureOnCommitCallbacks(execute=False):
                    report = ingest_files(as_files({"p.dcm": data}), practice=self.practice)
                self.assertEqual(
                    report.lines(),
                    ["rejected  p.dcm: DICOM preamble holds an executable or markup"],
                )
        self.assertFalse(Instance.objects.filter(original_name="p.dcm").exists())


class LaptopThumbnailsTestCase(BaseTestCase):
    def test_the_command_prints_its_report_before_building_thumbnails(self) -> None:
        import tempfile
        from pathlib import Path

        folder = Path(tempfile.mkdtemp(prefix="ingest-order-"))
        for n in (1, 2):
            (folder / f"IM{n}.dcm").write_bytes(dicom_bytes(n))
        seen: list[bool] = []

        class Out(io.StringIO):
            def write(self, text: str) -> int:
                if "stored" in text:
                    seen.append(
                        Series.objects.filter(thumbnail__isnull=False)
                        .exclude(study__patient=self_pat)
                        .exists()
                    )
                return super().write(text)

        self_pat = self.pat
        with self.captureOnCommitCallbacks(execute=True):
            call_command("ingest", str(folder), "--practice", "smile", stdout=Out())
        self.assertTrue(seen)
        self.assertFalse(any(seen))
        self.assertTrue(Series.objects.exclude(study__patient=self.pat).get().thumbnail_id)
