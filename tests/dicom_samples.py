"""DICOM files the fidelity tests and the conformance suite build: enhanced CT, overlays, ...

Made from pydicom's bundled samples or from scratch; nothing is downloaded. dcmtk renders
each with dcmj2pnm so that tests compare the portal's pixels with an independent viewer.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

ROOT = "1.2.826.0.1.3680043.8.498.91"


def sample(name: str) -> Dataset:
    """Read one of pydicom's bundled test files."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(get_testdata_file(name))


def to_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def identify(ds: Dataset, n: int, *, patient_id: str = "FID-1", study: str = "1") -> Dataset:
    """Give ds the patient and UIDs of test study `study`, instance n."""
    ds.PatientID = patient_id
    ds.PatientName = "Fidelity^Frances"
    ds.PatientBirthDate = "19700101"
    ds.StudyInstanceUID = f"{ROOT}.{study}"
    ds.SeriesInstanceUID = f"{ROOT}.{study}.{n}"
    ds.SOPInstanceUID = f"{ROOT}.{study}.{n}.1"
    if "file_meta" in ds.__dict__ or hasattr(ds, "file_meta"):
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = 1
    return ds


def enhanced_ct(frames: int = 4, rows: int = 32, cols: int = 24) -> Dataset:
    """An Enhanced CT whose rescale, window, spacing and positions live in functional groups."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.Modality = "CT"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    shared = Dataset()
    transform = Dataset()
    transform.RescaleIntercept, transform.RescaleSlope, transform.RescaleType = -1024, 1, "HU"
    shared.PixelValueTransformationSequence = [transform]
    measures = Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.5, 0.4], 1.0
    shared.PixelMeasuresSequence = [measures]
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PlaneOrientationSequence = [orientation]
    voi = Dataset()
    voi.WindowCenter, voi.WindowWidth = 40, 400
    shared.FrameVOILUTSequence = [voi]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for k in range(frames):
        item, position = Dataset(), Dataset()
        position.ImagePositionPatient = [0, 0, 2.0 * k]
        item.PlanePositionSequence = [position]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    z, y, x = np.mgrid[:frames, :rows, :cols]
    ds.PixelData = (824 + z * 50 + y * 8 + x * 4).astype(np.uint16).tobytes()
    return ds


def dcmtk_render(
    data: bytes,
    *,
    frame: int = 1,
    window: tuple[float, float] | None = None,
    extra: tuple[str, ...] = (),
) -> np.ndarray:
    """Return dcmj2pnm's 8-bit rendering of one frame (1-based) as an array."""
    with tempfile.TemporaryDirectory(prefix="dcmtk-") as tmp:
        src, out = Path(tmp) / "in.dcm", Path(tmp) / "out.png"
        src.write_bytes(data)
        args = ["dcmj2pnm", "--write-png", "--frame", str(frame), *extra]
        if window is not None:
            args += ["--set-window", str(window[0]), str(window[1])]
        subprocess.run([*args, str(src), str(out)], check=True, capture_output=True, timeout=60)
        return np.asarray(Image.open(out))


def have_dcmtk() -> bool:
    return shutil.which("dcmj2pnm") is not None


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Return the PSNR of two 8-bit images in dB (inf when identical)."""
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} != {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def bare_dataset(ds: Dataset, *, implicit: bool = True) -> bytes:
    """Return the dataset alone, as some devices export it: no preamble, no file meta."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, implicit
    write_dataset(out, ds)
    return out.getvalue()


def encapsulated_pdf(pdf: bytes, patient_id: str = "FID-1") -> bytes:
    """Return an Encapsulated PDF made by dcmtk's pdf2dcm."""
    with tempfile.TemporaryDirectory(prefix="pdf2dcm-") as tmp:
        src, out = Path(tmp) / "in.pdf", Path(tmp) / "out.dcm"
        src.write_bytes(pdf)
        subprocess.run(
            ["pdf2dcm", "+pn", "Fidelity^Frances", "+pi", patient_id, "--title", "Report",
             str(src), str(out)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        return out.read_bytes()


def key_object_selection(study_uid: str, series_uid: str, sop: tuple[str, str]) -> Dataset:
    """Return a Key Object Selection naming one image (sop: class UID, instance UID)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.59"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.Modality = "KO"
    ds.StudyInstanceUID = study_uid
    ds.ValueType = "CONTAINER"
    title = Dataset()
    title.CodeValue, title.CodingSchemeDesignator = "113000", "DCM"
    title.CodeMeaning = "Of Interest"
    ds.ConceptNameCodeSequence = [title]
    ref, series, study = Dataset(), Dataset(), Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = sop
    series.SeriesInstanceUID = series_uid
    series.ReferencedSOPSequence = [ref]
    study.StudyInstanceUID = study_uid
    study.ReferencedSeriesSequence = [series]
    ds.CurrentRequestedProcedureEvidenceSequence = [study]
    item = Dataset()
    item.RelationshipType, item.ValueType = "CONTAINS", "IMAGE"
    item.ReferencedSOPSequence = [ref]
    ds.ContentSequence = [item]
    return ds


def needs_tools(*tools: str):  # noqa: ANN201 - a pytest mark
    """Skip when a command-line tool is missing, except under CI, where it must be there."""
    import os

    import pytest

    missing = [t for t in tools if shutil.which(t) is None]
    return pytest.mark.skipif(
        bool(missing) and not os.environ.get("CI"), reason=f"not installed: {', '.join(missing)}"
    )
