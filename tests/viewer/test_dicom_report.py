"""`manage.py dicom_report STUDY`: per file, syntax, class, whether it renders and why not."""

from __future__ import annotations

import io

from django.core.management import CommandError, call_command

from portal.ingest import ingest_files
from portal.models import Study
from tests.base import BaseTestCase
from tests.dicom_samples import identify, sample, to_bytes
from tests.portal.ingest_helpers import edited_dicom


def _mpeg2(ds) -> None:  # noqa: ANN001
    from pydicom.encaps import encapsulate

    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    ds.PixelData = encapsulate([b"\x00\x00\x01\xba" + b"\x00" * 12])
    ds["PixelData"].VR = "OB"


class DicomReportTestCase(BaseTestCase):
    def test_it_lists_each_file_and_why_it_is_not_shown(self) -> None:
        ct = identify(sample("CT_small.dcm"), 1, patient_id="ZQ-98765")
        ct.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.77.1"
        files = {"ct.dcm": to_bytes(ct), "video.dcm": edited_dicom(_mpeg2, n=8)}
        with self.captureOnCommitCallbacks(execute=False):
            ingest_files([(n, io.BytesIO(d)) for n, d in files.items()], practice=self.practice)
        study = Study.objects.get(study_uid="1.2.826.0.1.3680043.8.498.77.1")
        out = io.StringIO()
        call_command("dicom_report", study.study_uid, stdout=out)
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 3, lines)
        ct_line = next(line for line in lines if "CT Image Storage" in line and "image" in line)
        self.assertIn("renders", ct_line)
        self.assertIn("Explicit VR Little Endian", ct_line)
        video = next(line for line in lines if "MPEG2" in line)
        self.assertIn("download only", video)
        self.assertIn("it is a video", video)
        self.assertEqual(lines[-1], "1 of 2 files shown in the viewer")

    def test_it_says_when_there_is_no_such_study(self) -> None:
        with self.assertRaisesMessage(CommandError, "No such study."):
            call_command("dicom_report", "1.2.3.4", stdout=io.StringIO())
