"""Series layouts and caches: sorting, volume detection, multi-frame, colour, refresh, budget."""

from __future__ import annotations

import io
from unittest import mock

import numpy as np
import pydicom
from django.test import TestCase
from pydicom.data import get_testdata_file

from portal import vault
from portal.models import Instance, Patient, Practice, Series, Study
from tests.viewer.helpers import make_volume_series, volume_pixels
from viewer import layouts, mpr, render


def _store(series: Series, ds: pydicom.Dataset, **fields) -> Instance:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    buf.seek(0)
    return Instance.objects.create(
        practice=series.study.practice,
        series=series,
        sop_instance_uid=ds.SOPInstanceUID,
        sop_class_uid=ds.SOPClassUID,
        transfer_syntax_uid=ds.file_meta.TransferSyntaxUID,
        rows=ds.Rows,
        columns=ds.Columns,
        blob=vault.store(buf),
        **fields,
    )


class LayoutTestCase(TestCase):
    def setUp(self) -> None:
        mpr.clear_caches()
        practice = Practice.objects.create(slug="p", name="P")
        patient = Patient.objects.create(practice=practice, patient_id="1", name="A B")
        self.study = Study.objects.create(practice=practice, patient=patient, study_uid="1.2.3")

    def _series(self, number: int) -> Series:
        return Series.objects.create(study=self.study, series_uid=f"1.2.3.{number}", number=number)

    def test_it_treats_a_multiframe_instance_as_a_volume(self) -> None:
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        pixels = volume_pixels(4, 16, 12)
        ds.Rows, ds.Columns, ds.NumberOfFrames = 16, 12, 4
        ds.PixelData = pixels.tobytes()
        _store(self._series(1), ds, frames=4, rescale_intercept=-1024.0)
        layout = layouts.layout_for(Series.objects.get(number=1))
        self.assertEqual((layout.kind, len(layout.slices)), ("volume", 4))
        values, _ = mpr.plane_values(layout, "coronal", 5)
        np.testing.assert_array_equal(values, pixels[::-1, 5, :])

    def test_it_keeps_colour_images_as_a_stack(self) -> None:
        ds = pydicom.dcmread(get_testdata_file("SC_rgb_small_odd.dcm"))
        _store(self._series(2), ds, samples_per_pixel=3, photometric=ds.PhotometricInterpretation)
        layout = layouts.layout_for(Series.objects.get(number=2))
        self.assertEqual(
            (layout.kind, layout.colour, layout.plane_count("coronal")), ("stack", True, 0)
        )
        jpeg = mpr.render_plane(layout, "axial", 0, 0, 1)
        self.assertEqual(jpeg[:2], b"\xff\xd8")
        with self.assertRaises(IndexError):
            mpr.plane_values(layout, "coronal", 0)

    def test_it_sees_new_instances_after_the_ttl(self) -> None:
        series, _ = make_volume_series(self.study, n=3)
        self.assertEqual(len(layouts.layout_for(series).slices), 3)
        extra = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        extra.SOPInstanceUID = "1.2.3.99"
        _store(series, extra)
        self.assertEqual(len(layouts.layout_for(series).slices), 3)  # cached within the TTL
        with mock.patch.object(layouts, "LAYOUT_TTL", 0.0):
            self.assertEqual(len(layouts.layout_for(series).slices), 4)

    def test_it_refuses_to_reformat_volumes_larger_than_the_cache(self) -> None:
        series, pixels = make_volume_series(self.study)
        with mock.patch.object(mpr, "_pixels", render.BoundedCache(1024)):
            layout = layouts.layout_for(series)
            with self.assertRaises(mpr.VolumeTooLarge):
                mpr.plane_values(layout, "sagittal", 3)
            values, _ = mpr.plane_values(layout, "axial", 3)
            np.testing.assert_array_equal(values, pixels[3])
