from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from sharing.archive import (
    ArchiveMember,
    DicomRef,
    build_dicomdir,
    dicom_layout,
    readme_text,
    series_summary,
    share_archive,
    stream_zip,
)

CHUNK = 4 * 1024 * 1024
ZERO = bytes(CHUNK)


def _dicom_files(count: int = 20) -> list[bytes]:
    """Return `count` CT instances of one study split over two series, as file bytes."""
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    series = [generate_uid(), generate_uid()]
    files = []
    for i in range(count):
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID = series[i % 2]
        ds.SeriesNumber = 1 + i % 2
        ds.InstanceNumber = i // 2 + 1
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        files.append(buf.getvalue())
    return files


def _chunked(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _members(files: list[bytes]) -> list[ArchiveMember]:
    refs = [DicomRef.from_dataset(dcmread(io.BytesIO(f))) for f in files]
    return [
        ArchiveMember(name, len(data), zlib.crc32(data), lambda d=data: _chunked(d), ref)
        for name, data, ref in zip(dicom_layout(refs), files, refs, strict=True)
    ]


def _write(chunks: object, path: Path) -> int:
    written = 0
    with path.open("wb") as fh:
        for chunk in chunks:  # type: ignore[attr-defined]
            written += fh.write(chunk)
    return written


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("share")
    files = _dicom_files()
    members = _members(files)
    photo = b"\xff\xd8 not really a jpeg"
    members.append(ArchiveMember("Photos/intraoral 1.jpg", len(photo), None, lambda: [photo]))
    zs, length = share_archive(members, "Smile Dental")
    path = tmp / "share.zip"
    written = _write(zs, path)
    with zipfile.ZipFile(path) as zf:
        zf.extractall(tmp / "out")
    return {"members": members, "files": files, "photo": photo, "path": path, "tmp": tmp} | {
        "length": length,
        "written": written,
    }


class TestShareZip:
    def test_it_announces_the_length_it_streams(self, shared: dict) -> None:
        assert shared["length"] == shared["written"] == shared["path"].stat().st_size

    def test_it_passes_zipfile_testzip(self, shared: dict) -> None:
        with zipfile.ZipFile(shared["path"]) as zf:
            assert zf.testzip() is None
            assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
            assert zf.namelist()[:2] == ["DICOMDIR", "README.txt"]

    @pytest.mark.skipif(shutil.which("unzip") is None, reason="unzip binary missing")
    def test_it_passes_unzip_t(self, shared: dict) -> None:
        result = subprocess.run(["unzip", "-t", str(shared["path"])], capture_output=True)
        assert result.returncode == 0, result.stdout.decode()[-500:]
        assert b"No errors detected" in result.stdout

    def test_it_keeps_originals_byte_identical(self, shared: dict) -> None:
        out = shared["tmp"] / "out"
        for member, data in zip(
            shared["members"], [*shared["files"], shared["photo"]], strict=True
        ):
            got = (out / member.arcname).read_bytes()
            assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
            assert member.crc32 in (None, zlib.crc32(got))

    def test_dicomdir_finds_every_instance_and_its_file(self, shared: dict) -> None:
        out = shared["tmp"] / "out"
        fs = FileSet(dcmread(out / "DICOMDIR"))
        dicom = [m for m in shared["members"] if m.dicom]
        assert len(fs) == len(dicom) == 20
        for member, data in zip(dicom, shared["files"], strict=True):
            assert member.dicom is not None
            found = fs.find(SOPInstanceUID=member.dicom.sop_instance_uid)
            assert len(found) == 1
            assert found[0].ReferencedFileID == member.arcname.split("/")
            assert Path(found[0].path).read_bytes() == data
            assert found[0].load().SeriesInstanceUID == member.dicom.series_uid

    def test_readme_lists_series_folders(self, shared: dict) -> None:
        text = (shared["tmp"] / "out" / "README.txt").read_text()
        assert "Smile Dental" in text and "DICOMDIR" in text and "health information" in text
        assert "DICOM/P0001/S0001/SE0001/" in text and "DICOM/P0001/S0001/SE0002/" in text
        assert "(10 files)" in text


class TestDicomLayout:
    def test_it_groups_series_with_conformant_components(self) -> None:
        members = _members(_dicom_files(4))
        names = [m.arcname for m in members]
        assert names == [
            "DICOM/P0001/S0001/SE0001/IM000001",
            "DICOM/P0001/S0001/SE0002/IM000001",
            "DICOM/P0001/S0001/SE0001/IM000002",
            "DICOM/P0001/S0001/SE0002/IM000002",
        ]

    def test_it_refuses_duplicate_instances(self) -> None:
        ref = _members(_dicom_files(1))[0].dicom
        with pytest.raises(ValueError):
            dicom_layout([ref, ref])


class TestBuildDicomdir:
    def test_record_offsets_point_at_records(self) -> None:
        ds = dcmread(io.BytesIO(build_dicomdir(_members(_dicom_files(6)))))
        records = ds.DirectoryRecordSequence
        at = {r.seq_item_tell: r for r in records}
        first = at[ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity]
        assert first.DirectoryRecordType == "PATIENT"
        study = at[first.OffsetOfReferencedLowerLevelDirectoryEntity]
        series = at[study.OffsetOfReferencedLowerLevelDirectoryEntity]
        assert series.SeriesNumber == 1
        assert at[series.OffsetOfTheNextDirectoryRecord].SeriesNumber == 2
        image = at[series.OffsetOfReferencedLowerLevelDirectoryEntity]
        chain = [image]
        while chain[-1].OffsetOfTheNextDirectoryRecord:
            chain.append(at[chain[-1].OffsetOfTheNextDirectoryRecord])
        assert [r.InstanceNumber for r in chain] == [1, 2, 3]
        assert ds.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.1.3.10"
        assert ds.FileSetID == "SHARE"

    def test_it_encodes_non_ascii_names(self) -> None:
        members = _members(_dicom_files(2))
        for m in members:
            assert m.dicom is not None
            m.dicom = DicomRef(**{**m.dicom.__dict__, "patient_name": "Müller^Zoë"})
        ds = dcmread(io.BytesIO(build_dicomdir(members)))
        patient = ds.DirectoryRecordSequence[0]
        assert patient.DirectoryRecordType == "PATIENT"
        assert patient.SpecificCharacterSet == "ISO_IR 192"
        assert str(patient.PatientName) == "Müller^Zoë"

    def test_it_refuses_non_conformant_file_ids(self) -> None:
        member = _members(_dicom_files(1))[0]
        for bad in ("DICOM/p0001/IM1", "DICOM/TOOLONGNAME/IM1", "DICOM/A B"):
            with pytest.raises(ValueError):
                build_dicomdir([ArchiveMember(bad, 1, None, list, member.dicom)])


class TestStreamZip:
    def test_it_refuses_unsafe_or_duplicate_names(self) -> None:
        for bad in ("../x", "/etc/x", "a/../b", "C:/x", "a\\b", "a//b", ""):
            with pytest.raises(ValueError):
                stream_zip([], {bad: b"x"})
        with pytest.raises(ValueError):
            stream_zip([], {"README.txt": b"x", "readme.TXT": b"y"})

    def test_it_opens_member_data_only_when_streamed(self) -> None:
        opened = []
        member = ArchiveMember("a.bin", 3, None, lambda: opened.append(1) or [b"abc"])
        zs, _ = stream_zip([member], {})
        assert opened == []
        assert b"abc" in b"".join(zs)
        assert opened == [1]

    def test_it_aborts_when_a_member_is_shorter_than_announced(self) -> None:
        zs, _ = stream_zip([ArchiveMember("a.bin", 10, None, lambda: [b"abc"])], {})
        with pytest.raises(RuntimeError):
            b"".join(zs)

    def test_it_uses_zip64_past_4_gib_in_constant_memory(self, tmp_path: Path) -> None:
        """A 4 GiB + 1 MiB member streams in constant memory and reads back as zip64."""
        size = 4 * 1024**3 + 1024**2

        def zeros() -> Iterator[bytes]:
            left = size
            while left:
                n = min(CHUNK, left)
                left -= n
                yield bytes(n)

        members = [
            ArchiveMember("big.bin", size, None, zeros),
            ArchiveMember("after.bin", 4, None, lambda: [b"tail"]),
        ]
        zs, length = stream_zip(members, {"README.txt": b"hi"})
        # The archive is written sparse: runs of zero chunks become holes, so the file on
        # disk is byte-identical to the stream without writing 4 GiB.
        path = tmp_path / "big.zip"
        tracemalloc.start()
        pos = 0
        with path.open("wb") as fh:
            for chunk in zs:
                if len(chunk) != CHUNK or chunk != ZERO:
                    fh.seek(pos)
                    fh.write(chunk)
                pos += len(chunk)
            fh.truncate(pos)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert pos == length
        assert peak < 3 * CHUNK
        with zipfile.ZipFile(path) as zf:
            big = zf.getinfo("big.bin")
            assert big.file_size == size
            assert zf.getinfo("after.bin").header_offset > 2**32
            assert zf.read("after.bin") == b"tail"
            assert zf.read("README.txt") == b"hi"
        if shutil.which("unzip"):
            listing = subprocess.run(["unzip", "-lv", str(path)], capture_output=True)
            assert listing.returncode == 0
            assert b"4296015872" in listing.stdout


def test_readme_without_dicom_says_so() -> None:
    text = readme_text("Clinic", [])
    assert "(no DICOM series)" in text and "original image files" in text
    assert series_summary([ArchiveMember("x.pdf", 1, None, list)]) == []


def test_it_trusts_the_crc_stored_at_ingest() -> None:
    """The CRC recorded at ingest is written as is (not recomputed), so a wrong one shows."""
    data = b"abc" * 1000
    good = ArchiveMember("good.bin", len(data), zlib.crc32(data), lambda: _chunked(data))
    bad = ArchiveMember("bad.bin", len(data), zlib.crc32(data) ^ 1, lambda: _chunked(data))
    computed = ArchiveMember("computed.bin", len(data), None, lambda: _chunked(data))
    zs, _ = stream_zip([good, bad, computed], {})
    zf = zipfile.ZipFile(io.BytesIO(b"".join(zs)))
    assert zf.getinfo("bad.bin").CRC == zlib.crc32(data) ^ 1
    assert zf.testzip() == "bad.bin"
    assert zf.getinfo("computed.bin").CRC == zlib.crc32(data)


def test_dicomdir_records_are_encoded_as_pydicom_would() -> None:
    """Each hand-encoded record equals pydicom's own encoding of the record it reads back."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    members = _members(_dicom_files(6))
    data = build_dicomdir(members)
    ds = dcmread(io.BytesIO(data))
    for record in ds.DirectoryRecordSequence:
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, False
        write_dataset(fp, record)
        assert fp.getvalue() in data
