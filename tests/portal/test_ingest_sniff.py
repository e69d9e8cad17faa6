"""Content checks of portal.ingest without the database: file types, DICOM headers, preambles."""

from __future__ import annotations

import io
import os

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import UID

from portal.ingest import sniff
from portal.ingest.errors import NeedMore, Rejected
from portal.ingest.header import DatasetValues, NotSimple, read_header
from portal.ingest.scanner import scan
from portal.textchecks import has_control_characters
from tests.portal.ingest_helpers import dicom_bytes, edited_dicom, jpeg_bytes, pdf_bytes, png_bytes

SAMPLES = os.path.dirname(get_testdata_file("CT_small.dcm"))


def _part10_samples() -> list[str]:
    names = []
    for name in sorted(os.listdir(SAMPLES)):
        path = os.path.join(SAMPLES, name)
        if name.endswith(".dcm") and os.path.isfile(path):
            with open(path, "rb") as f:
                if f.read(132)[128:] == b"DICM":
                    names.append(name)
    return names


def _fast_path_handles(name: str) -> bool:
    try:
        scan(open(os.path.join(SAMPLES, name), "rb").read())
    except NotSimple:
        return False
    except Rejected:
        return True
    return True


FAST = [n for n in _part10_samples() if _fast_path_handles(n)]
DEFERRED = [n for n in _part10_samples() if not _fast_path_handles(n)]


def _outcome(fn):  # noqa: ANN001, ANN202
    try:
        return fn()
    except Rejected as exc:
        return f"rejected: {exc}"


def _pydicom_outcome(data: bytes):  # noqa: ANN202
    bio = io.BytesIO(data)
    ds = pydicom.dcmread(bio, stop_before_pixels=True)
    ts = UID(ds.file_meta.TransferSyntaxUID)
    header = _outcome(lambda: read_header(DatasetValues(ds), ts, little_endian=ts.is_little_endian))
    return header, bio.tell()


@pytest.mark.parametrize("name", FAST)
def test_fast_scan_agrees_with_pydicom(name: str) -> None:
    """The raw scanner finds the same fields and Pixel Data offset as pydicom."""
    data = open(os.path.join(SAMPLES, name), "rb").read()
    values, syntax, pos = scan(data)
    fast = _outcome(lambda: read_header(values, syntax, little_endian=True))
    slow, slow_pos = _pydicom_outcome(data)
    assert fast == slow
    assert pos == slow_pos


def _records_fields(header):  # noqa: ANN001, ANN202
    if isinstance(header, str):
        return header
    return (
        header.patient_id,
        header.patient_name,
        header.birth_date,
        header.sex,
        header.study,
        header.series,
        header.instance,
    )


@pytest.mark.parametrize("name", DEFERRED)
def test_files_the_fast_scan_defers_are_read_as_pydicom_reads_them(name: str) -> None:
    """Big-endian, implicit-VR oddities and the like take the pydicom path with equal results.

    Where ingest rejects such a file, pydicom confirms it is not a storable image.
    """
    data = open(os.path.join(SAMPLES, name), "rb").read()
    parsed = _outcome(lambda: sniff.parse_dicom(data, at_eof=True))
    full = pydicom.dcmread(io.BytesIO(data), force=True)
    syntax = getattr(full.file_meta, "TransferSyntaxUID", None)
    if isinstance(parsed, str):
        assert parsed.startswith("rejected: ") and len(parsed) > len("rejected: ")
        image_like = syntax is not None and "PixelData" in full and "Rows" in full
        if image_like:
            slow, _ = _pydicom_outcome(data)
            assert isinstance(slow, str) or "pixel" in parsed or "syntax" in parsed
    else:
        slow, _ = _pydicom_outcome(data)
        assert _records_fields(parsed) == _records_fields(slow)


def test_the_sample_set_exercises_both_paths() -> None:
    assert len(FAST) > 20
    assert len(DEFERRED) > 0


def test_it_classifies_by_content_not_name() -> None:
    assert sniff.classify(dicom_bytes(1)) == sniff.DICOM
    assert sniff.classify(jpeg_bytes()) == sniff.PHOTO
    assert sniff.classify(png_bytes()) == sniff.PHOTO
    assert sniff.classify(pdf_bytes()) == sniff.PDF


@pytest.mark.parametrize(
    "preamble", [b"MZ\x90\x00", b"\x7fELF\x02", b"#!/bin/sh\n", b"\n <svg onload=x>", b"PK\x03\x04"]
)
def test_it_refuses_executable_preambles(preamble: bytes) -> None:
    with pytest.raises(Rejected, match="preamble"):
        sniff.classify(dicom_bytes(1, preamble=preamble))


def test_a_tiff_preamble_is_allowed() -> None:
    assert sniff.classify(dicom_bytes(1, preamble=b"II*\x00\x08\x00")) == sniff.DICOM


def test_it_asks_for_more_bytes_when_the_header_is_longer() -> None:
    data = dicom_bytes(1)
    with pytest.raises(NeedMore):
        sniff.parse_dicom(data[:700], at_eof=False)
    header = sniff.parse_dicom(data, at_eof=True)
    assert header.sop_uid.endswith(".1.1.1")
    assert header.pixel_length == 128 * 128 * 2


def test_a_truncated_header_at_the_end_of_the_file_is_rejected() -> None:
    with pytest.raises(Rejected, match="DICOM header has no"):
        sniff.parse_dicom(dicom_bytes(1)[:700], at_eof=True)


def test_person_names_read_given_name_first() -> None:
    header = sniff.parse_dicom(dicom_bytes(1, name="Doe^Jane^Q^Dr"), at_eof=True)
    assert header.patient_name == "Jane Q Doe"


def test_a_pdf_needs_its_end_marker() -> None:
    sniff.check_pdf_tail(pdf_bytes()[-2000:])
    with pytest.raises(Rejected, match="truncated"):
        sniff.check_pdf_tail(pdf_bytes()[:-40])


@pytest.mark.parametrize(
    "name",
    ["Evil\x00Name^X", "Evil\x07Name^X", "\x1b[31mEvil^Name", "Evil\u202eName^X"],
    ids=["nul", "bell", "escape", "bidi"],
)
def test_control_characters_in_header_texts_are_taken_out(name: str) -> None:
    """A device's odd byte in a name is no reason to refuse the file, and it must not reach
    a page, a log line or PostgreSQL (which refuses NUL in text)."""

    def edit(ds):  # noqa: ANN001, ANN202
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName = name
        ds.StudyDescription = "CBCT\x00\x1b[2J maxilla"

    header = sniff.parse_dicom(edited_dicom(edit), at_eof=True)
    for text in (header.patient_name, header.study["description"]):
        assert text and not has_control_characters(text), repr(text)
    assert "Evil" in header.patient_name and "Name" in header.patient_name
    assert header.study["description"] == "CBCT [2J maxilla"
