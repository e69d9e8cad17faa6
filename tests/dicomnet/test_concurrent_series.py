"""Two devices filing the same series at the same moment: one series, one current thumbnail."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import pydicom
from django.core.files.storage import storages
from django.db.models import Q
from django.test import TransactionTestCase

from portal import vault
from portal.demo.phantom import PhantomGeometry
from portal.models import Instance, Practice, Series, StoredObject, Study
from tests.dicomnet.helpers import configure, receiving
from tests.dicomnet.test_receiver import phantom, scu
from viewer import previews

GEOMETRY = PhantomGeometry(slices=12, rows=64, columns=64, pixel_spacing_mm=1.0, marker_slice=2)
SENDERS = 3


class ConcurrentSeriesTestCase(TransactionTestCase):
    def setUp(self) -> None:
        self.practice = Practice.objects.create(slug="smile", name="Smile Dental")
        configure(self.practice)
        self.tmp = Path(tempfile.mkdtemp(prefix="dicomnet-race-"))

    def _send_at_once(self, port: int, groups: list[list[Path]]) -> list[int]:
        """Send each group over its own association; all release at the same moment."""
        barrier = threading.Barrier(len(groups))
        statuses: list[int] = []

        def send(files: list[Path]) -> None:
            assoc = scu().associate("127.0.0.1", port, ae_title="SMILEPACS")
            try:
                barrier.wait(30)
                statuses.extend(assoc.send_c_store(pydicom.dcmread(f)).Status for f in files)
                barrier.wait(30)
            finally:
                assoc.release()

        threads = [threading.Thread(target=send, args=(g,)) for g in groups]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        return statuses

    def test_one_series_gets_one_thumbnail_of_the_whole_series_and_no_stray_objects(self):
        files = phantom(self.tmp / "cbct", geometry=GEOMETRY)
        for attempt in range(3):  # the interleaving differs each time; every one must hold
            Study.objects.all().delete()
            StoredObject.objects.all().delete()
            with receiving() as port:
                statuses = self._send_at_once(port, [files[i::SENDERS] for i in range(SENDERS)])
            self.assertEqual(statuses, [0] * len(files), attempt)

            series = Series.objects.get()  # one row, however the associations raced
            self.assertEqual(Instance.objects.filter(series=series).count(), len(files))
            # The thumbnail shows the middle of the whole series, not of the first half filed.
            self.assertIsNotNone(series.thumbnail_id, attempt)
            shown = vault.read_bytes(series.thumbnail)
            self.assertEqual(shown, previews.series_thumbnail(series), attempt)
            # Every stored object is something's and has its file; a replaced one is shredded
            # (its row says so, its key and file are gone).
            live = StoredObject.objects.filter(shredded_at__isnull=True)
            used = Q(instance__isnull=False) | Q(pk=series.thumbnail_id)
            if series.volume_id:
                used |= Q(pk=series.volume_id)
            self.assertFalse(live.exclude(used).exists(), attempt)
            root = Path(storages["vault"].location)
            for obj in StoredObject.objects.all():
                self.assertEqual((root / obj.storage_name).is_file(), obj.shredded_at is None)
                self.assertEqual(obj.wrapped_key is None, obj.shredded_at is not None)
