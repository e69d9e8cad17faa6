"""A receiver process killed mid-association keeps every instance it answered success for.

A CBCT unit or PACS may purge a study once every instance was acknowledged, so "success"
must mean "on record": the real `manage.py dicom_receiver` is SIGKILLed after the sender
has counted ten successes of twenty, and what was acknowledged is filed when the receiver
starts again, or by the periodic task, byte-identical, with nothing half-visible.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import pydicom
from django.conf import settings
from django.db import connection
from django.test import TransactionTestCase, override_settings
from django_otp import DEVICE_ID_SESSION_KEY
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from audit.models import AccessEvent, Action
from portal import vault
from portal.demo.phantom import PhantomGeometry
from portal.models import Arrival, Instance, Practice, Receipt, Role, Study
from portal.vault import housekeeping
from tests.base import make_staff
from tests.dicomnet.helpers import configure, dataset_bytes, free_port
from tests.dicomnet.test_receiver import phantom

ROOT = Path(__file__).resolve().parents[2]
SENT, KILL_AFTER = 20, 10
GEOMETRY = PhantomGeometry(slices=SENT, rows=64, columns=64, pixel_spacing_mm=1.0, marker_slice=3)


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or "postgres"
    return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _scu() -> AE:
    ae = AE(ae_title="CBCT1")
    ae.add_requested_context(CTImageStorage, pydicom.uid.ExplicitVRLittleEndian)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    return ae


class InterruptedReceiverTestCase(TransactionTestCase):
    def setUp(self) -> None:
        self.practice = Practice.objects.create(slug="smile", name="Smile Dental")
        configure(self.practice)
        self.tmp = Path(tempfile.mkdtemp(prefix="dicomnet-kill-"))
        self.files = phantom(self.tmp / "cbct", geometry=GEOMETRY)
        self.uids = {
            pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in self.files
        }
        self.files_before = {f.name for f in housekeeping.orphans(timedelta(0))}
        self.port = free_port()
        self.procs: list[subprocess.Popen] = []
        self.addCleanup(self._stop_all)

    # -- the receiver, as production runs it -------------------------------------------------
    def _start_receiver(self) -> subprocess.Popen:
        env = {
            **os.environ,
            "PORTAL_MODE": "local",
            "PORTAL_DATA_DIR": str(settings.DATA_DIR),
            "DATABASE_URL": _database_url(),
            "DJANGO_SETTINGS_MODULE": "portal.settings",
        }
        log = open(self.tmp / f"receiver{len(self.procs)}.log", "w")  # noqa: SIM115
        self.addCleanup(log.close)
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "dicom_receiver", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            self.assertIsNone(proc.poll(), self._log())
            assoc = _scu().associate("127.0.0.1", self.port, ae_title="SMILEPACS")
            if assoc.is_established:
                assoc.release()
                return proc
            time.sleep(0.3)
        self.fail("the receiver did not start: " + self._log())

    def _log(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in sorted(self.tmp.glob("receiver*.log")))

    def _stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)

    def _send_and_kill(self) -> tuple[set[str], set[str]]:
        """Send all files over one association; SIGKILL the receiver after ten successes.

        Return the SOP Instance UIDs the sender was told success for, and those it sent.
        """
        receiver = self._start_receiver()
        acknowledged: set[str] = set()
        sent: set[str] = set()
        assoc = _scu().associate("127.0.0.1", self.port, ae_title="SMILEPACS")
        self.assertTrue(assoc.is_established)

        def send() -> None:
            for uid, path in self.uids.items():
                if not assoc.is_established:
                    return
                sent.add(uid)
                status = assoc.send_c_store(path)
                if "Status" in status and status.Status == 0x0000:
                    acknowledged.add(uid)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < KILL_AFTER:
            self.assertLess(time.monotonic(), deadline, self._log())
            self.assertTrue(sender.is_alive() or len(acknowledged) >= KILL_AFTER, self._log())
            time.sleep(0.001)
        receiver.send_signal(signal.SIGKILL)
        receiver.wait(30)
        sender.join(60)
        assoc.abort()
        told = set(acknowledged)
        self.assertGreaterEqual(len(told), KILL_AFTER)
        self.assertLess(len(told), SENT, "the receiver was killed after the whole study")
        return told, sent

    def _assert_filed(self, acknowledged: set[str], sent: set[str]) -> None:
        filed = set(
            Instance.objects.filter(practice=self.practice).values_list(
                "sop_instance_uid", flat=True
            )
        )
        self.assertLessEqual(acknowledged, filed, "an acknowledged instance was lost")
        self.assertLessEqual(filed, sent)
        for instance in Instance.objects.filter(practice=self.practice).select_related("blob"):
            stored = vault.read_bytes(instance.blob)
            self.assertEqual(
                dataset_bytes(stored), dataset_bytes(self.uids[instance.sop_instance_uid])
            )
        study = Study.objects.get(practice=self.practice)
        arrival = Arrival.objects.get(study=study)
        self.assertEqual((arrival.device, arrival.instances), ("CBCT unit", len(filed)))
        self.assertTrue(arrival.recovered)
        event = AccessEvent.objects.filter(action=Action.INGEST, detail__via="dicom").get()
        self.assertEqual(event.detail["instances"], len(filed))
        self.assertTrue(event.detail["recovered"])

    def _assert_nothing_filed_yet_and_no_acknowledged_orphan(self, acknowledged, sent) -> None:
        # Nothing is half-visible: no study shows before its instances are filed.
        self.assertFalse(Instance.objects.filter(practice=self.practice).exists())
        # verify_storage would delete orphans: none of the acknowledged files may be one.
        orphans = {f.name for f in housekeeping.orphans(timedelta(0))} - self.files_before
        self.assertLessEqual(
            len(orphans),
            len(sent) - len(acknowledged),
            "acknowledged instances left as orphans nobody can decrypt",
        )

    def test_a_restarted_receiver_files_what_was_acknowledged_before_a_kill(self) -> None:
        acknowledged, sent = self._send_and_kill()
        self._assert_nothing_filed_yet_and_no_acknowledged_orphan(acknowledged, sent)
        self._start_receiver()
        # Filed at start, before the listener answers.
        self._assert_filed(acknowledged, sent)
        staff = make_staff("bob", self.practice, Role.FRONT_DESK)
        self.client.force_login(staff)
        session = self.client.session
        session[DEVICE_ID_SESSION_KEY] = staff.totpdevice_set.get().persistent_id
        session.save()
        page = self.client.get("/arrivals/")
        self.assertContains(page, "arrived from CBCT unit")
        self.assertContains(page, "recovered after an interruption")
        # The sender sends the study again: nothing is filed twice.
        assoc = _scu().associate("127.0.0.1", self.port, ae_title="SMILEPACS")
        for path in self.files:
            self.assertEqual(assoc.send_c_store(path).Status, 0x0000)
        assoc.release()
        deadline = time.monotonic() + 60
        while Instance.objects.filter(practice=self.practice).count() < SENT:
            self.assertLess(time.monotonic(), deadline, self._log())
            time.sleep(0.2)
        time.sleep(0.5)
        self.assertEqual(Instance.objects.filter(practice=self.practice).count(), SENT)
        self.assertFalse(Receipt.objects.exists(), "a filed instance kept its receipt")
        check = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "verify_storage", "--orphan-age-minutes", "0"],
            cwd=ROOT,
            env={
                **os.environ,
                "PORTAL_MODE": "local",
                "PORTAL_DATA_DIR": str(settings.DATA_DIR),
                "DATABASE_URL": _database_url(),
                "DJANGO_SETTINGS_MODULE": "portal.settings",
            },
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn(" 0 failed", check.stdout)

    def test_the_periodic_task_files_what_a_dead_receiver_acknowledged(self) -> None:
        from portal.dicomnet.tasks import file_receipts

        acknowledged, sent = self._send_and_kill()
        self._assert_nothing_filed_yet_and_no_acknowledged_orphan(acknowledged, sent)
        # Within the grace period a receipt may belong to a live association: left alone.
        file_receipts.delay()
        self.assertFalse(Instance.objects.filter(practice=self.practice).exists())
        with override_settings(PORTAL_DICOM_RECEIPT_GRACE_SECONDS=0):
            file_receipts.delay()
        self._assert_filed(acknowledged, sent)
        self.assertIn("file-dicom-receipts", settings.CELERY_BEAT_SCHEDULE)
