"""Files for the ingest tests: DICOM made from pydicom's samples, photos, PDFs, ZIPs."""

from __future__ import annotations

import io
import zipfile

import pydicom
from PIL import Image
from pydicom.data import get_testdata_file

from portal.demo.phantom import make_photo_jpeg, make_report_pdf

ROOT = "1.2.826.0.1.3680043.8.498.77"


def dicom_bytes(
    n: int = 1,
    *,
    study: str = "1",
    series: str = "1",
    patient_id: str = "ZQ-98765",
    name: str = "Quixote^Zebulon",
    sample: str = "CT_small.dcm",
    preamble: bytes | None = None,
) -> bytes:
    """Return a DICOM file for one instance of a test study, from a pydicom sample."""
    ds = pydicom.dcmread(get_testdata_file(sample))
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19750203"
    ds.PatientSex = "M"
    ds.StudyInstanceUID = f"{ROOT}.{study}"
    ds.SeriesInstanceUID = f"{ROOT}.{study}.{series}"
    ds.SOPInstanceUID = f"{ROOT}.{study}.{series}.{n}"
    ds.InstanceNumber = n
    if preamble is not None:
        ds.preamble = preamble.ljust(128, b"\x00")
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def edited_dicom(edit, n: int = 90) -> bytes:  # noqa: ANN001
    """Return a CT DICOM file after edit(ds) changed its dataset."""
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(n)))
    edit(ds)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def png_bytes(size: tuple[int, int] = (32, 24)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def jpeg_bytes() -> bytes:
    return make_photo_jpeg(seed=3, size=(160, 120))


def pdf_bytes() -> bytes:
    return make_report_pdf(["Report", "No findings."])


def zip_bytes(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            zf.writestr(info, data)
    return out.getvalue()


def as_files(files: dict[str, bytes]) -> list[tuple[str, io.BytesIO]]:
    return [(name, io.BytesIO(data)) for name, data in files.items()]
