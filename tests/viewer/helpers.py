"""Fixtures for viewer tests: a small volume series, a photo and a PDF in the vault."""

from __future__ import annotations

import io

import numpy as np
import pydicom
from django.contrib.auth.models import User
from pydicom.data import get_testdata_file

from portal import vault
from portal.demo import phantom
from portal.ingest import ingest_files
from portal.models import Attachment, Instance, Practice, Series, Study


def volume_pixels(n: int = 5, rows: int = 16, cols: int = 12) -> np.ndarray:
    """Return distinct int16 stored values per voxel so any wrong cut shows."""
    z, y, x = np.mgrid[:n, :rows, :cols]
    return (z * 300 + y * 10 + x).astype(np.int16)


def make_volume_series(study: Study, n: int = 5, number: int = 2) -> tuple[Series, np.ndarray]:
    """Store an n-slice axial volume, in shuffled instance order, and return it with its pixels."""
    pixels = volume_pixels(n)
    series = Series.objects.create(
        study=study, series_uid=f"{study.study_uid}.{number}", modality="CT", number=number
    )
    for k in reversed(range(n)):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.Rows, ds.Columns = pixels.shape[1:]
        ds.PixelData = pixels[k].tobytes()
        ds.ImagePositionPatient = [0.0, 0.0, 2.0 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.5, 0.4]
        ds.SOPInstanceUID = f"{series.series_uid}.{k + 1}"
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        buf.seek(0)
        Instance.objects.create(
            practice=study.practice,
            series=series,
            sop_instance_uid=ds.SOPInstanceUID,
            sop_class_uid=ds.SOPClassUID,
            transfer_syntax_uid=ds.file_meta.TransferSyntaxUID,
            instance_number=n - k,
            rows=ds.Rows,
            columns=ds.Columns,
            bits_allocated=16,
            pixel_representation=1,
            photometric="MONOCHROME2",
            rescale_slope=1.0,
            rescale_intercept=-1024.0,
            pixel_spacing=[0.5, 0.4],
            image_position=[0.0, 0.0, 2.0 * k],
            image_orientation=[1, 0, 0, 0, 1, 0],
            blob=vault.store(buf),
        )
    return series, pixels


# A small dental CBCT: 160 slices of 256 x 256 at 0.6 mm, occlusal plane at slice 68 of 160.
SMALL_DENTAL = phantom.PhantomGeometry(
    slices=160,
    rows=256,
    columns=256,
    pixel_spacing_mm=0.6,
    slice_thickness_mm=0.5,
    first_slice_z_mm=-42.0,
    marker_slice=60,
)


def make_dental_series(practice: Practice, user: User | None = None) -> Series:
    """Ingest the small phantom dental CBCT as the real pipeline does, previews included."""
    datasets = phantom.iter_cbct_datasets(
        SMALL_DENTAL,
        patient_name="Dental^Demo",
        patient_id="DENT-1",
        birth_date="19800101",
        study_date="20260101",
    )
    files = []
    for k, ds in enumerate(datasets):
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        files.append((f"IM{k:04d}.dcm", buf))
    ingest_files(files, practice=practice, user=user)
    return Series.objects.get(study__patient__patient_id="DENT-1", study__practice=practice)


def truncate_pixels(series: Series, index: int) -> None:
    """Cut the pixel data of slice `index` of a make_volume_series volume in half."""
    instance = series.instances.get(image_position=[0.0, 0.0, 2.0 * index])
    ds = pydicom.dcmread(io.BytesIO(vault.read_bytes(instance.blob)))
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    buf.seek(0)
    instance.blob = vault.store(buf)
    instance.save(update_fields=["blob"])


def make_photo(study: Study) -> Attachment:
    """Store a JPEG intraoral photo attached to the study."""
    return Attachment.objects.create(
        practice=study.practice,
        patient=study.patient,
        study=study,
        kind=Attachment.Kind.PHOTO,
        content_type="image/jpeg",
        title="Upper arch",
        original_name="upper arch.jpg",
        blob=vault.store_bytes(phantom.make_photo_jpeg()),
    )


def make_pdf(study: Study) -> Attachment:
    """Store a PDF report attached to the study."""
    return Attachment.objects.create(
        practice=study.practice,
        patient=study.patient,
        study=study,
        kind=Attachment.Kind.PDF,
        content_type="application/pdf",
        title="Radiology report",
        original_name="report.pdf",
        blob=vault.store_bytes(phantom.make_report_pdf(["Findings: none."])),
    )
