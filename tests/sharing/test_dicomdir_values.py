"""The DICOMDIR holds only valid values, whatever the files say: checked with dciodvfy."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import zlib
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from sharing.archive import ArchiveMember, DicomRef, build_dicomdir, dicom_layout
from tests.dicom_samples import needs_tools

pytestmark = needs_tools("dciodvfy")


def _member_refs(**changes: object) -> list[ArchiveMember]:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    ref = dataclasses.replace(DicomRef.from_dataset(ds), **changes)
    name = dicom_layout([ref])[0]
    return [ArchiveMember(name, len(data), zlib.crc32(data), lambda: [data], ref)]


def _errors(dicomdir: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "DICOMDIR"
    path.write_bytes(dicomdir)
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def test_a_plain_share_is_dciodvfy_clean(tmp_path: Path) -> None:
    assert _errors(build_dicomdir(_member_refs()), tmp_path) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"study_time": ""},
        {"study_date": ""},
        {"study_time": "10:30:00"},
        {"accession": "A1\\A2"},
        {"accession": "AN-0123456789-0123456789"},
        {"study_id": ""},
        {"study_description": "x" * 80},
        {"modality": "dx intra"},
        {"series_number": 2**40},
        {"patient_name": "Doe^Jane\\Roe^Jo"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_invalid_values_from_files_are_made_valid(changes: dict, tmp_path: Path) -> None:
    assert _errors(build_dicomdir(_member_refs(**changes)), tmp_path) == []
