"""Synthetic dental CBCT studies with known geometry, written as DICOM, for demos and tests.

The anatomy lives in portal.demo.anatomy, its voxels in portal.demo.voxels; photos and the
report PDF in portal.demo.pictures (re-exported here for existing callers).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
)

from portal.demo.anatomy import PhantomGeometry, Tooth
from portal.demo.pictures import make_photo_jpeg, make_report_pdf
from portal.demo.voxels import RESCALE_INTERCEPT, iter_slices_hu

__all__ = [
    "PhantomGeometry",
    "Tooth",
    "iter_cbct_datasets",
    "iter_slices_hu",
    "make_photo_jpeg",
    "make_report_pdf",
    "write_cbct",
]

_UID_NAMESPACE = uuid.UUID("5f0c7a52-3d55-4b7e-9a51-2f1d8d3c6e10")


def _da(value: date | str) -> str:
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    if len(value) != 8 or not value.isdigit():
        raise ValueError("dates must be datetime.date or YYYYMMDD")
    return value


def _uid(*parts: object) -> str:
    # A name-based UUID under 2.25: pydicom's generate_uid(prefix=None) ignores entropy_srcs.
    name = "\x1f".join(map(str, parts))
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}"


def iter_cbct_datasets(
    geometry: PhantomGeometry,
    *,
    patient_name: str,
    patient_id: str,
    birth_date: date | str,
    study_date: date | str,
    study_uid: str | None = None,
    series_uid: str | None = None,
    description: str = "CBCT",
    seed: int = 0,
) -> Iterator[Dataset]:
    """Yield one complete CT Image Storage file dataset per axial slice, inferior first."""
    g = geometry
    study_da, birth_da = _da(study_date), _da(birth_date)
    study_uid = study_uid or _uid("study", seed, patient_id, study_da, description)
    series_uid = series_uid or _uid("series", study_uid, seed)
    frame_uid = _uid("frame", series_uid)
    digest = hashlib.sha256(study_uid.encode()).hexdigest()
    accession = "PH" + str(int(digest[:12], 16) % 10**8).zfill(8)
    ps = g.pixel_spacing_mm
    for k, hu in enumerate(iter_slices_hu(g, seed)):
        sop_uid = _uid("instance", series_uid, k)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "PORTAL_PHANTOM"
        ds = Dataset()
        ds.file_meta = meta
        ds.preamble = b"\x00" * 128
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_da
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "093000"
        ds.AccessionNumber = accession
        ds.Modality = "CT"
        ds.Manufacturer = "Portal Phantom Works"
        ds.ManufacturerModelName = "Synthetic CBCT"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = description
        ds.SeriesDescription = f"{description} axial {ps:g} mm"
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.PatientBirthDate = birth_da
        ds.PatientSex = ""
        ds.BodyPartExamined = "JAW"
        ds.KVP = "90"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = accession[-6:]
        ds.SeriesNumber = 1
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = k + 1
        ds.PatientPosition = "HFS"
        ds.ImagePositionPatient = [round(v, 4) for v in g.image_position(k)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = round(g.slice_z_mm(k), 4)
        ds.SliceThickness = g.slice_thickness_mm
        ds.PixelSpacing = [ps, ps]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = g.rows, g.columns
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = RESCALE_INTERCEPT
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter = [500, 40]
        ds.WindowWidth = [3000, 400]
        ds.WindowCenterWidthExplanation = ["BONE", "SOFT TISSUE"]
        ds.BurnedInAnnotation = "NO"
        ds.LossyImageCompression = "00"
        hu -= RESCALE_INTERCEPT
        ds.PixelData = hu.astype("<i2", copy=False).tobytes()
        yield ds


def write_cbct(directory: Path, geometry: PhantomGeometry, **kwargs: object) -> list[Path]:
    """Write the phantom as IM0001.dcm, IM0002.dcm, ... one slice at a time."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(geometry.slices)))
    paths = []
    for k, ds in enumerate(iter_cbct_datasets(geometry, **kwargs), start=1):  # type: ignore[arg-type]
        path = directory / f"IM{k:0{width}d}.dcm"
        dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths
