"""Stored volumes: reformats read one sealed copy instead of decoding every file."""

from __future__ import annotations

import io
from unittest import mock

import numpy as np
import pydicom
from django.core.files.storage import storages
from django.test import TestCase

from portal import vault
from portal.compliance.retention import shred_study
from portal.models import Instance, Patient, Practice, Series, Study
from tests.viewer.helpers import make_volume_series
from viewer import layouts, mpr, volumes
from viewer.tasks import build_previews


class StoredVolumeTestCase(TestCase):
    def setUp(self) -> None:
        mpr.clear_caches()
        self.addCleanup(mpr.clear_caches)
        practice = Practice.objects.create(slug="p", name="P")
        patient = Patient.objects.create(practice=practice, patient_id="1", name="A B")
        self.study = Study.objects.create(practice=practice, patient=patient, study_uid="1.2.3")
        self.series, self.pixels = make_volume_series(self.study, n=6)

    def _coronal(self, index: int) -> np.ndarray:
        layout = layouts.layout_for(Series.objects.get(pk=self.series.pk))
        return mpr.plane_values(layout, "coronal", index)[0]

    def test_the_preview_task_stores_the_volume_encrypted(self) -> None:
        build_previews([self.series.pk], [])
        self.series.refresh_from_db()
        self.assertIsNotNone(self.series.volume)
        with storages["vault"].open(self.series.volume.storage_name) as fh:
            stored = fh.read()
        self.assertNotIn(self.pixels[3].tobytes(), stored)

    def test_a_reformat_reads_the_stored_copy_without_decoding_a_file(self) -> None:
        build_previews([self.series.pk], [])
        mpr.clear_caches()
        with mock.patch.object(mpr, "decode_blob", side_effect=AssertionError("decoded")):
            values = self._coronal(5)
        np.testing.assert_array_equal(values, self.pixels[::-1, 5, :])

    def test_the_first_reformat_stores_a_copy_for_the_next_process(self) -> None:
        self._coronal(2)
        self.series.refresh_from_db()
        self.assertIsNotNone(self.series.volume)
        mpr.clear_caches()
        with mock.patch.object(mpr, "decode_blob", side_effect=AssertionError("decoded")):
            np.testing.assert_array_equal(self._coronal(2), self.pixels[::-1, 2, :])

    def test_a_sagittal_cut_matches_before_and_after_the_transposed_copy(self) -> None:
        build_previews([self.series.pk], [])
        layout = layouts.layout_for(Series.objects.get(pk=self.series.pk))
        first = mpr.plane_values(layout, "sagittal", 4)[0].copy()
        for _ in range(200):  # the background copy takes moments on a busy machine
            if mpr.pixel_cache().get(("t", layout.key)) is not None:
                break
            mpr.threading.Event().wait(0.01)
        later = mpr.plane_values(layout, "sagittal", 4)[0]
        np.testing.assert_array_equal(first, self.pixels[::-1, :, 4])
        np.testing.assert_array_equal(later, first)

    def test_a_grown_series_is_not_shown_from_its_old_copy(self) -> None:
        build_previews([self.series.pk], [])
        old = Series.objects.get(pk=self.series.pk).volume
        extra = self.series.instances.order_by("pk").first()
        ds = pydicom.dcmread(io.BytesIO(vault.read_bytes(extra.blob)))
        ds.SOPInstanceUID += ".9"
        top = 2.0 * self.series.instances.count()  # the next slice, evenly spaced
        ds.ImagePositionPatient = [0.0, 0.0, top]
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        buf.seek(0)
        Instance.objects.create(
            practice=extra.practice, series=self.series, sop_instance_uid=ds.SOPInstanceUID,
            sop_class_uid=extra.sop_class_uid, transfer_syntax_uid=extra.transfer_syntax_uid,
            rows=extra.rows, columns=extra.columns, rescale_intercept=-1024.0,
            image_position=[0.0, 0.0, top], image_orientation=[1, 0, 0, 0, 1, 0],
            blob=vault.store(buf),
        )  # fmt: skip
        mpr.clear_caches()
        layout = layouts.layout_for(Series.objects.get(pk=self.series.pk))
        self.assertIsNone(volumes.load(layout))
        with self.captureOnCommitCallbacks(execute=True):
            self.assertEqual(mpr.plane_values(layout, "coronal", 0)[0].shape[0], 7)
        old.refresh_from_db()
        self.assertIsNone(old.wrapped_key)  # the stale copy is shredded

    def test_a_damaged_copy_falls_back_to_the_files(self) -> None:
        build_previews([self.series.pk], [])
        blob = Series.objects.get(pk=self.series.pk).volume
        storage = storages["vault"]
        with storage.open(blob.storage_name, "rb") as fh:
            data = bytearray(fh.read())
        data[-5] ^= 0xFF
        with open(storage.path(blob.storage_name), "wb") as fh:
            fh.write(bytes(data))
        mpr.clear_caches()
        with self.assertLogs("viewer.volumes", "WARNING"):
            values = self._coronal(1)
        np.testing.assert_array_equal(values, self.pixels[::-1, 1, :])

    def test_shredding_the_study_shreds_its_volume(self) -> None:
        build_previews([self.series.pk], [])
        blob = Series.objects.get(pk=self.series.pk).volume
        shred_study(self.study)
        blob.refresh_from_db()
        self.assertIsNone(blob.wrapped_key)
        self.assertFalse(storages["vault"].exists(blob.storage_name))
