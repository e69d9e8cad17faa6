"""Damaged ZIP members are rejected one by one; the rest of the archive and batch is kept."""

from __future__ import annotations

import io
import random
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

from django.conf import settings
from django.core.management import CommandError, call_command

from portal.ingest import ingest_files
from portal.models import Instance, StoredObject
from tests.base import BaseTestCase
from tests.portal.ingest_helpers import ROOT, as_files, dicom_bytes, edited_dicom, zip_bytes

DAMAGED = "archive member is damaged"


def _big_pixels(ds) -> None:  # noqa: ANN001
    # Incompressible, so the compressed stream is long and the damage lies deep inside it.
    ds.Rows, ds.Columns = 512, 512
    ds.PixelData = random.Random(7).randbytes(512 * 512 * 2)


def big_dicom(n: int) -> bytes:
    """Return a 512 KiB CT DICOM file, much longer than the first read of a file."""
    return edited_dicom(_big_pixels, n)


def _data_span(archive: bytes, name: str) -> tuple[int, int]:
    """Return where the compressed data of a member starts and ends in the archive."""
    info = zipfile.ZipFile(io.BytesIO(archive)).getinfo(name)
    local = info.header_offset
    name_len = int.from_bytes(archive[local + 26 : local + 28], "little")
    extra_len = int.from_bytes(archive[local + 28 : local + 30], "little")
    start = local + 30 + name_len + extra_len
    return start, start + info.compress_size


def corrupt_deflate(archive: bytes, name: str, plain: bytes, good_bytes: int) -> bytes:
    """Keep the first good_bytes of a deflated member intact and make the rest invalid.

    After a full flush the next byte starts a new deflate block; 0xFF declares the reserved
    block type 3, so zlib fails there with "invalid block type", deep inside the member.
    """
    start, end = _data_span(archive, name)
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    prefix = co.compress(plain[:good_bytes]) + co.flush(zlib.Z_FULL_FLUSH)
    assert len(prefix) < end - start
    bad = prefix.ljust(end - start, b"\xff")
    with_error = zlib.decompressobj(-15)
    try:
        with_error.decompress(bad)
    except zlib.error:
        pass
    else:
        raise AssertionError("the damaged member must fail to decompress")
    return archive[:start] + bad + archive[end:]


def unsupported_method(archive: bytes, name: str, method: int) -> bytes:
    """Declare a member as compressed with another method, in both of its headers."""
    data = bytearray(archive)
    info = zipfile.ZipFile(io.BytesIO(archive)).getinfo(name)
    data[info.header_offset + 8 : info.header_offset + 10] = method.to_bytes(2, "little")
    cd_start = int.from_bytes(data[-6:-2], "little")
    at = data.index(b"PK\x01\x02" + data[cd_start + 4 : cd_start + 8], cd_start)
    while data[at + 46 : at + 46 + len(name)] != name.encode():
        at = data.index(b"PK\x01\x02", at + 4)
    data[at + 10 : at + 12] = method.to_bytes(2, "little")
    return bytes(data)


def truncate_last(archive: bytes, cut: int) -> bytes:
    """Remove the last cut bytes of the last member's data; keep the central directory valid."""
    cd_start = int.from_bytes(archive[-6:-2], "little")
    data = bytearray(archive[: cd_start - cut] + archive[cd_start:])
    data[-6:-2] = (cd_start - cut).to_bytes(4, "little")
    return bytes(data)


def vault_files() -> list[Path]:
    root = Path(settings.STORAGES["vault"]["OPTIONS"]["location"])
    return [p for p in root.rglob("*") if p.is_file()]


class DamagedZipTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.before = (StoredObject.objects.count(), len(vault_files()))

    def ingest(self, files: dict[str, bytes]):  # noqa: ANN201
        with (
            self.captureOnCommitCallbacks(execute=False),
            self.assertNoLogs("portal.ingest", level="ERROR"),
        ):
            return ingest_files(as_files(files), practice=self.practice)

    def only_rejected(self, report, damaged: str) -> str:  # noqa: ANN001
        """Check that only the damaged member was refused and left nothing; return why."""
        by_name = {f.name: f for f in report.files}
        self.assertEqual(by_name["upload.zip/IM1.dcm"].status, "stored")
        self.assertEqual(by_name["IM2.dcm"].status, "stored")
        self.assertEqual(by_name[damaged].status, "rejected")
        self.assertEqual(report.rejected, 1)
        self.assertNotIn("\n", by_name[damaged].line())
        self.assertEqual(Instance.objects.filter(series__study__study_uid=f"{ROOT}.1").count(), 2)
        # Only the two kept files left an object: no partial ciphertext of the damaged one.
        self.assertEqual(StoredObject.objects.count(), self.before[0] + 2)
        self.assertEqual(len(vault_files()), self.before[1] + 2)
        return by_name[damaged].reason

    def test_it_rejects_a_member_with_corrupt_deflate_data(self) -> None:
        plain = big_dicom(50)
        archive = zip_bytes({"IM1.dcm": dicom_bytes(1), "bad.dcm": plain})
        archive = corrupt_deflate(archive, "bad.dcm", plain, good_bytes=300 * 1024)
        report = self.ingest({"upload.zip": archive, "IM2.dcm": dicom_bytes(2)})
        self.assertIn(DAMAGED, self.only_rejected(report, "upload.zip/bad.dcm"))

    def test_it_rejects_a_member_with_an_unsupported_compression_method(self) -> None:
        archive = zip_bytes({"IM1.dcm": dicom_bytes(1), "d64.dcm": dicom_bytes(50)})
        archive = unsupported_method(archive, "d64.dcm", 9)
        report = self.ingest({"upload.zip": archive, "IM2.dcm": dicom_bytes(2)})
        self.assertEqual(
            self.only_rejected(report, "upload.zip/d64.dcm"),
            "archive member uses unsupported compression (Deflate64)",
        )

    def test_it_rejects_a_truncated_member(self) -> None:
        members = {"IM1.dcm": dicom_bytes(1), "cut.dcm": big_dicom(50)}
        archive = truncate_last(zip_bytes(members, compression=zipfile.ZIP_STORED), 200 * 1024)
        report = self.ingest({"upload.zip": archive, "IM2.dcm": dicom_bytes(2)})
        self.assertIn(DAMAGED, self.only_rejected(report, "upload.zip/cut.dcm"))

    def test_it_rejects_a_bzip2_member_damaged_past_its_first_block(self) -> None:
        def three_mb(ds) -> None:  # noqa: ANN001
            ds.Rows, ds.Columns = 1536, 1024
            ds.PixelData = random.Random(9).randbytes(1536 * 1024 * 2)

        members = {"IM1.dcm": dicom_bytes(1), "bz.dcm": edited_dicom(three_mb, 50)}
        archive = zip_bytes(members, compression=zipfile.ZIP_BZIP2)
        start, end = _data_span(archive, "bz.dcm")
        at = start + (end - start) * 4 // 5  # in the last of several 900 kB blocks
        archive = archive[:at] + bytes(b ^ 0x5A for b in archive[at : at + 64]) + archive[at + 64 :]
        report = self.ingest({"upload.zip": archive, "IM2.dcm": dicom_bytes(2)})
        self.assertIn(DAMAGED, self.only_rejected(report, "upload.zip/bz.dcm"))

    def test_it_rejects_a_member_whose_crc_does_not_match(self) -> None:
        members = {"IM1.dcm": dicom_bytes(1), "crc.dcm": dicom_bytes(50)}
        archive = zip_bytes(members, compression=zipfile.ZIP_STORED)
        _, end = _data_span(archive, "crc.dcm")
        # A changed pixel value: the file still parses, only the checksum tells.
        archive = archive[: end - 1] + bytes([archive[end - 1] ^ 0xFF]) + archive[end:]
        report = self.ingest({"upload.zip": archive, "IM2.dcm": dicom_bytes(2)})
        self.assertIn(DAMAGED, self.only_rejected(report, "upload.zip/crc.dcm"))


class DamagedZipCommandTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(tempfile.mkdtemp(prefix="ingest-damaged-"))
        self.addCleanup(shutil.rmtree, self.tmp)

    def test_command_reports_damaged_members_without_a_traceback(self) -> None:
        plain = big_dicom(50)
        archive = zip_bytes({"IM1.dcm": dicom_bytes(1), "bad.dcm": plain})
        archive = corrupt_deflate(archive, "bad.dcm", plain, good_bytes=300 * 1024)
        (self.tmp / "upload.zip").write_bytes(archive)
        (self.tmp / "d64.zip").write_bytes(
            unsupported_method(zip_bytes({"d64.dcm": dicom_bytes(3)}), "d64.dcm", 9)
        )
        out = io.StringIO()
        with (
            self.assertRaises(CommandError) as caught,
            self.assertNoLogs("portal.ingest", level="ERROR"),
        ):
            call_command("ingest", str(self.tmp), "--practice", "smile", stdout=out)
        self.assertEqual(caught.exception.returncode, 1)
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 4)
        self.assertEqual(
            lines[0],
            "rejected  d64.zip/d64.dcm: archive member uses unsupported compression (Deflate64)",
        )
        self.assertEqual(lines[1], "stored  upload.zip/IM1.dcm")
        self.assertTrue(lines[2].startswith(f"rejected  upload.zip/bad.dcm: {DAMAGED}"))
        self.assertEqual(lines[3], "1 stored, 0 duplicate, 2 rejected (1 study)")
