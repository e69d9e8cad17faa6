"""A small dental CBCT (teeth on an arch of known shape) filed into an existing study."""

from __future__ import annotations

import io

from portal import vault
from portal.demo.phantom import PhantomGeometry, iter_cbct_datasets
from portal.models import Instance, Series, Study

# Coarse, so that each test stores it in a moment: 64 slices of 128 x 128 at 0.8 mm, 1 mm apart.
TINY_DENTAL = PhantomGeometry(
    slices=64, rows=128, columns=128, pixel_spacing_mm=0.8, slice_thickness_mm=1.0,
    first_slice_z_mm=-40.0, marker_slice=40,
)  # fmt: skip
# A curve through the middle of the image (col, row), patient's right first.
CURVE = "30,90;40,50;64,30;88,50;98,90"


def make_dental_series(study: Study, geometry: PhantomGeometry = TINY_DENTAL) -> Series:
    """Store the phantom's slices as one CT series of the study and return it."""
    series = Series.objects.create(
        study=study, series_uid=f"{study.study_uid}.9", modality="CT", number=9,
        description="CBCT",
    )  # fmt: skip
    datasets = iter_cbct_datasets(
        geometry, patient_name="Pat^Example", patient_id="P1", birth_date="19800101",
        study_date="20260102", study_uid=study.study_uid, series_uid=series.series_uid,
    )  # fmt: skip
    for k, ds in enumerate(datasets):
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        buf.seek(0)
        Instance.objects.create(
            practice=study.practice, series=series, sop_instance_uid=ds.SOPInstanceUID,
            sop_class_uid=ds.SOPClassUID, transfer_syntax_uid=ds.file_meta.TransferSyntaxUID,
            instance_number=k + 1, rows=ds.Rows, columns=ds.Columns, bits_allocated=16,
            pixel_representation=int(ds.PixelRepresentation), photometric="MONOCHROME2",
            rescale_slope=float(ds.RescaleSlope), rescale_intercept=float(ds.RescaleIntercept),
            pixel_spacing=[float(v) for v in ds.PixelSpacing],
            image_position=[float(v) for v in ds.ImagePositionPatient],
            image_orientation=[float(v) for v in ds.ImageOrientationPatient],
            blob=vault.store(buf),
        )  # fmt: skip
    return series
