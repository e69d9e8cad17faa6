"""`manage.py ingest PATH` and ingest_path: folders, ZIPs, symlinks, report and exit status."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from django.core.management import CommandError, call_command

from portal.ingest import ingest_path
from portal.models import Attachment, Instance, StaffMember
from tests.base import BaseTestCase
from tests.portal.ingest_helpers import ROOT, dicom_bytes, jpeg_bytes, zip_bytes


class IngestPathTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(tempfile.mkdtemp(prefix="ingest-test-"))
        (self.tmp / "a" / "b").mkdir(parents=True)
        (self.tmp / "a" / "IM1.dcm").write_bytes(dicom_bytes(1))
        (self.tmp / "a" / "b" / "IM2.dcm").write_bytes(dicom_bytes(2))
        (self.tmp / "more.zip").write_bytes(zip_bytes({"x/IM3.dcm": dicom_bytes(3)}))

    def tearDown(self) -> None:
        import shutil

        shutil.rmtree(self.tmp)
        super().tearDown()

    def run_command(self, *args: str) -> tuple[int, str]:
        out = io.StringIO()
        try:
            call_command("ingest", *args, stdout=out)
        except CommandError as exc:
            self.assertIn("rejected", str(exc))
            return exc.returncode, out.getvalue()
        return 0, out.getvalue()

    def test_it_walks_folders_and_zips_with_relative_names(self) -> None:
        report = ingest_path(self.tmp, practice=self.practice)
        self.assertEqual(
            report.lines(),
            ["stored  a/IM1.dcm", "stored  a/b/IM2.dcm", "stored  more.zip/x/IM3.dcm"],
        )
        self.assertEqual(Instance.objects.filter(series__study__study_uid=f"{ROOT}.1").count(), 3)

    def test_it_skips_symlinks(self) -> None:
        outside = Path(tempfile.mkdtemp(prefix="ingest-outside-"))
        (outside / "IM9.dcm").write_bytes(dicom_bytes(9))
        (self.tmp / "link.dcm").symlink_to(outside / "IM9.dcm")
        (self.tmp / "linkdir").symlink_to(outside)
        report = ingest_path(self.tmp, practice=self.practice)
        self.assertEqual(len(report.files), 3)
        self.assertFalse(Instance.objects.filter(sop_instance_uid__endswith=".9").exists())

    def test_it_ingests_a_single_file(self) -> None:
        report = ingest_path(self.tmp / "a" / "IM1.dcm", practice=self.practice)
        self.assertEqual(report.lines(), ["stored  IM1.dcm"])

    def test_command_prints_the_report_and_exits_0(self) -> None:
        code, out = self.run_command(str(self.tmp), "--practice", "smile")
        self.assertEqual(code, 0)
        self.assertIn("stored  a/b/IM2.dcm", out)
        self.assertIn("3 stored, 0 duplicate, 0 rejected (1 study)", out)
        code, out = self.run_command(str(self.tmp), "--practice", "smile")
        self.assertEqual(
            (code, out.splitlines()[-1]), (0, "0 stored, 3 duplicate, 0 rejected (1 study)")
        )

    def test_command_exits_1_when_a_file_is_rejected(self) -> None:
        (self.tmp / "junk.dcm").write_bytes(b"not dicom at all")
        code, out = self.run_command(str(self.tmp), "--practice", "smile")
        self.assertEqual(code, 1)
        self.assertIn("rejected  junk.dcm: not a DICOM file, JPEG/PNG photo or PDF", out)

    def test_command_attaches_photos_to_the_given_patient(self) -> None:
        photo = self.tmp / "smile.jpg"
        photo.write_bytes(jpeg_bytes())
        code, _ = self.run_command(str(photo), "--practice", "smile", "--patient", "P-1001")
        self.assertEqual(code, 0)
        self.assertEqual(Attachment.objects.get().patient, self.pat)

    def test_command_refuses_bad_arguments_without_a_traceback(self) -> None:
        cases = [
            ([str(self.tmp / "missing")], "No such file or folder"),
            ([str(self.tmp), "--practice", "nope"], "No practice with slug 'nope'"),
            ([str(self.tmp)], "more than one practice"),
            ([str(self.tmp), "--practice", "smile", "--patient", "X-0"], "No patient"),
        ]
        for args, message in cases:
            with self.subTest(args=args), self.assertRaisesMessage(CommandError, message):
                call_command("ingest", *args, stdout=io.StringIO())

    def test_command_picks_the_only_practice(self) -> None:
        StaffMember.objects.filter(practice=self.practice_b).delete()
        self.practice_b.delete()
        code, out = self.run_command(str(self.tmp / "a" / "IM1.dcm"))
        self.assertEqual((code, out.splitlines()[0]), (0, "stored  IM1.dcm"))
