"""Faults a practice's server meets, each caused for real and answered cleanly.

A worker killed mid-task, the object store going away mid-upload, a full disk, PostgreSQL
restarted under traffic, a client that disconnects mid-download.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db.models import Q
from django.test import SimpleTestCase, TestCase, TransactionTestCase, override_settings

from portal.demo import phantom
from portal.ingest import ingest_path
from portal.models import Instance, Practice, Series, StoredObject, Study
from portal.vault import housekeeping
from tests.integration import faults
from tests.integration.faults import RESET
from tests.integration.services import REDIS_URL, gunicorn, require, start_worker
from tests.integration.test_celery_worker import _database_url
from tests.integration.webclient import WebClient
from tests.portal.s3server import s3_endpoint, s3_storage_settings


def _cbct(folder: Path, slices: int = 150, size: int = 128) -> list[Path]:
    return phantom.write_cbct(
        folder,
        phantom.PhantomGeometry(
            slices=slices, rows=size, columns=size, pixel_spacing_mm=round(80 / size, 3)
        ),
        patient_name="Fault^Test",
        patient_id="FAULT-1",
        birth_date=date(1970, 1, 1),
        study_date=date(2026, 1, 1),
        seed=slices,
    )


def _live_objects() -> int:
    return StoredObject.objects.filter(wrapped_key__isnull=False).count()


class ObjectStoreFailsTestCase(TestCase):
    def test_an_upload_that_loses_the_store_keeps_nothing_and_a_retry_works(self) -> None:
        bucket = "faults-store"
        storage = s3_storage_settings(bucket)
        moto = urlsplit(s3_endpoint())
        link = faults.BreakableLink((moto.hostname, moto.port))
        self.addCleanup(link.close)
        storage["OPTIONS"] = {**storage["OPTIONS"], "endpoint_url": link.url}
        practice = Practice.objects.create(slug="f", name="Fault Dental")
        folder = Path(tempfile.mkdtemp(prefix="portal-fault-"))
        _cbct(folder, slices=150, size=64)
        with override_settings(STORAGES={**settings.STORAGES, "vault": storage}):
            link.break_after_puts = 40
            report = ingest_path(folder, practice=practice, previews=False)
            self.assertTrue(link.broken.is_set(), "the store never went away")
            self.assertEqual(report.stored, 0)
            self.assertIn("storage failed", report.files[0].reason)
            self.assertFalse(Study.objects.exists())  # nothing half-visible
            self.assertEqual(_live_objects(), 0)
            link.mends()
            orphans = housekeeping.orphans(timedelta(0))
            retry = ingest_path(folder, practice=practice, previews=False)
            self.assertEqual(retry.stored, 150)
            self.assertEqual(Instance.objects.count(), 150)
            # What reached the store before it went away has no row: unreadable, and cleaned.
            self.assertLessEqual(len(orphans), 41)
            out = io.StringIO()
            call_command(
                "verify_storage", "--delete-orphans", "--orphan-age-minutes", "0", stdout=out
            )
            self.assertIn("150 ok, 0 failed", out.getvalue())
            self.assertIn(f"deleted {len(orphans)} orphaned files", out.getvalue())
            self.assertEqual(housekeeping.orphans(timedelta(0)), [])


class FullDiskTestCase(TestCase):
    def test_a_full_disk_is_a_clean_error_and_nothing_is_corrupt(self) -> None:
        practice = Practice.objects.create(slug="d", name="Disk Dental")
        folder = Path(tempfile.mkdtemp(prefix="portal-fault-"))
        _cbct(folder, slices=150, size=128)  # about 5 MB
        with faults.small_disk(1024) as disk:
            vault = {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(disk)},
            }
            with override_settings(STORAGES={**settings.STORAGES, "vault": vault}):
                report = ingest_path(folder, practice=practice, previews=False)
                self.assertEqual(report.stored, 0)
                self.assertIn("storage failed", report.files[-1].reason)
                self.assertFalse(Study.objects.exists())
                self.assertEqual(_live_objects(), 0)
                leftovers = [p for p in disk.rglob("*") if p.is_file()]
                self.assertEqual(leftovers, [], "no partial ciphertext stays on the disk")
        roomy = Path(tempfile.mkdtemp(prefix="portal-roomy-"))
        vault["OPTIONS"] = {"location": str(roomy)}
        with override_settings(STORAGES={**settings.STORAGES, "vault": vault}):
            self.assertEqual(ingest_path(folder, practice=practice, previews=False).stored, 150)
            out = io.StringIO()
            call_command("verify_storage", "--orphan-age-minutes", "0", stdout=out)
            self.assertIn("150 ok, 0 failed", out.getvalue())


SERIES = 6


class WorkerKilledTestCase(TransactionTestCase):
    def test_previews_of_a_killed_worker_are_built_once_by_the_next(self) -> None:
        require(REDIS_URL, "Redis")
        import redis

        from portal.celery import app
        from viewer.tasks import build_previews

        redis.Redis.from_url(REDIS_URL).flushdb()
        saved = app.conf.task_always_eager
        app.conf.task_always_eager = False  # this test's tasks go to the real workers
        self.addCleanup(setattr, app.conf, "task_always_eager", saved)
        env = {
            **os.environ,
            "PORTAL_MODE": "local",
            "PORTAL_DATA_DIR": str(settings.DATA_DIR),
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "PORTAL_TASK_VISIBILITY_SECONDS": "3",
            "PORTAL_TASK_RESTORE_SECONDS": "1",
        }
        practice = Practice.objects.create(slug="k", name="Killed Dental")
        folder = Path(tempfile.mkdtemp(prefix="portal-fault-"))
        for n in range(SERIES):
            phantom.write_cbct(
                folder / f"s{n}",
                phantom.PhantomGeometry(slices=150, rows=256, columns=256, pixel_spacing_mm=0.3),
                patient_name="Killed^Worker", patient_id="KILL-1", birth_date=date(1970, 1, 1),
                study_date=date(2026, 1, 1), seed=n, study_uid="1.2.826.0.1.3680043.8.498.66",
                series_uid=f"1.2.826.0.1.3680043.8.498.66.{n + 1}",
            )  # fmt: skip
        ingest_path(folder, practice=practice, previews=False)
        series = list(Series.objects.values_list("pk", flat=True))
        self.assertEqual(len(series), SERIES)
        self.assertFalse(Series.objects.filter(volume__isnull=False).exists())
        log_path = Path(settings.DATA_DIR) / "killed-worker.log"
        log = log_path.open("w")
        self.addCleanup(log.close)
        first = start_worker(env, log)
        with app.connection_for_write(REDIS_URL) as conn:
            build_previews.apply_async(args=[series, []], connection=conn)
        deadline = time.monotonic() + 60
        while not Series.objects.filter(volume__isnull=False).exists():  # mid-task: one done
            self.assertLess(time.monotonic(), deadline, log_path.read_text()[-2000:])
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(20)
        done_before = Series.objects.filter(volume__isnull=False).count()
        second = start_worker(env, log)
        self.addCleanup(lambda: (second.terminate(), second.wait(20)))
        deadline = time.monotonic() + 120
        # The volume is stored before the thumbnail: wait for both of every series.
        unfinished = Series.objects.filter(Q(volume__isnull=True) | Q(thumbnail__isnull=True))
        while unfinished.exists():
            self.assertLess(time.monotonic(), deadline, log_path.read_text()[-3000:])
            time.sleep(0.3)
        self.assertLess(done_before, SERIES, "the worker was killed after the task finished")
        rows = Series.objects.values_list("thumbnail_id", "volume_id")
        referenced = {pk for pair in rows for pk in pair if pk is not None}
        self.assertEqual(len(referenced), 2 * SERIES)
        instances = Instance.objects.count()
        # A thumbnail the killed worker made is shredded just after its replacement commits.
        settled = time.monotonic() + 10
        while _live_objects() - instances != 2 * SERIES and time.monotonic() < settled:
            time.sleep(0.2)
        kept = _live_objects() - instances
        self.assertEqual(kept, 2 * SERIES, "an extra thumbnail or volume was kept")


class DatabaseRestartTestCase(SimpleTestCase):
    def test_requests_recover_after_postgresql_restarts_without_restarting_the_web(self) -> None:
        import secrets
        import subprocess
        import sys

        from tests.integration.served import ROOT

        with faults.own_postgres() as (url, restart):
            data = Path(tempfile.mkdtemp(prefix="portal-pgrestart-"))
            key = __import__("base64").b64encode(os.urandom(32)).decode()
            env = {
                **os.environ,
                "PORTAL_MODE": "production",
                "DJANGO_SETTINGS_MODULE": "portal.settings",
                "DATABASE_URL": url,
                "SECRET_KEY": secrets.token_urlsafe(50),
                "PORTAL_KEYS": f"k1:{key}",
                "PORTAL_AUDIT_KEY": key,
                "PORTAL_AUDIT_SIGNING_KEY": key,
                "PORTAL_DATA_DIR": str(data),
                "PORTAL_VAULT_DIR": str(data / "vault"),
                "PORTAL_STATIC_ROOT": str(data / "static"),
                "ALLOWED_HOSTS": "127.0.0.1",
                "PORTAL_BASE_URL": "https://127.0.0.1",
                "EMAIL_HOST": "127.0.0.1",
                "CELERY_BROKER_URL": "redis://127.0.0.1:6379/13",
                "CELERY_TASK_ALWAYS_EAGER": "1",
                "LOG_LEVEL": "WARNING",
            }
            for name in ("AWS_STORAGE_BUCKET_NAME", "REDIS_URL", "EMAIL_BACKEND"):
                env.pop(name, None)
            for command in (["migrate"], ["collectstatic"]):
                subprocess.run(  # noqa: S603
                    [sys.executable, "manage.py", *command, "--no-input", "-v", "0"],
                    cwd=ROOT, env=env, check=True, timeout=300,
                )  # fmt: skip
            with gunicorn(env, data / "server.log", workers=2, threads=4) as base:
                master = self._master(base)
                deadline = time.monotonic() + 30
                while len(master.children()) < 2:  # both workers booted
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.1)
                workers = {p.pid for p in master.children()}
                client = WebClient(base, address="198.51.100.90")
                statuses: list[int] = []
                bodies: list[str] = []
                stop = threading.Event()

                def traffic() -> None:
                    while not stop.is_set():
                        reply = client.get("/s/not-a-real-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
                        statuses.append(reply.status)
                        bodies.append(reply.text)
                        time.sleep(0.02)

                thread = threading.Thread(target=traffic)
                thread.start()
                time.sleep(1)
                restart(3.0)
                back = time.monotonic()
                recovered = None
                while time.monotonic() - back < 30:
                    if statuses[-5:] == [404] * 5:
                        recovered = time.monotonic() - back
                        break
                    time.sleep(0.1)
                stop.set()
                thread.join(10)
                self.assertIsNotNone(recovered, f"still failing: {statuses[-20:]}")
                self.assertIn(503, statuses, "the outage was not reported as one")
                self.assertEqual(set(statuses) - {404, 503}, set(), statuses)
                outage = [b for s, b in zip(statuses, bodies, strict=True) if s == 503]
                self.assertTrue(all("Briefly unavailable" in b for b in outage))
                self.assertFalse(any("Traceback" in b or "psycopg" in b for b in bodies))
                log = (data / "server.log").read_text()
                self.assertIn("database unavailable (OperationalError)", log)
                self.assertNotIn("Traceback", log)  # one line per failed request, no stack
                self.assertEqual({p.pid for p in master.children()}, workers)
                self.assertEqual(client.get("/readyz").status, 200)

    def _master(self, base: str) -> psutil.Process:
        return _gunicorn_master(base)


def _gunicorn_master(base: str) -> psutil.Process:
    """Return the gunicorn master listening at base (its workers are its children)."""
    port = urlsplit(base).port
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN":
            process = psutil.Process(conn.pid)
            return process if process.children() else process.parent()
    raise AssertionError(f"nothing listens at {base}")


@pytest.mark.usefixtures("served_class")
class DisconnectTestCase(SimpleTestCase):
    def test_a_client_gone_mid_download_leaks_nothing_and_is_audited_incomplete(self) -> None:
        link = self.served.setup("practice_links", links=1, slug="gone", big_file_mb=64)["links"][0]
        client = WebClient(self.served.base_url, address="198.51.100.77")
        client.get(f"/s/{link['token']}")
        client.get("/s/")
        client.post("/s/", {"password": link["password"], "birth_date": link["birth_date"]})
        # Every worker's thread pool at full size first, so that what is counted is leaks.
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: WebClient(self.served.base_url).get("/healthz"), range(64)))
            list(pool.map(lambda _: client.get("/s/home/"), range(16)))
        time.sleep(1)
        workers = self._workers()
        before = {p.pid: (p.num_fds(), p.num_threads()) for p in workers}
        for _ in range(3):
            self._start_and_drop(client, "/s/download/share.zip")
        time.sleep(2)
        after = {p.pid: (p.num_fds(), p.num_threads()) for p in self._workers()}
        self.assertEqual(set(after), set(before), "a worker died")
        for pid, (fds, threads) in after.items():
            self.assertLessEqual(fds, before[pid][0] + 2, "file descriptors leaked")
            self.assertLessEqual(threads, before[pid][1], "a download thread outlived its client")
        counts = self.served.setup("download_events", code=link["code"])
        self.assertGreaterEqual(counts["incomplete"], 3, counts)

    def _workers(self) -> list[psutil.Process]:
        return _gunicorn_master(self.served.base_url).children()

    def _start_and_drop(self, client: WebClient, path: str) -> None:
        parts = urlsplit(self.served.base_url)
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.sendall(
                (
                    f"GET {path} HTTP/1.1\r\nHost: {parts.hostname}\r\n"
                    f"X-Forwarded-Proto: https\r\nX-Forwarded-For: {client.address}\r\n"
                    f"Cookie: {cookie}\r\n\r\n"
                ).encode()
            )
            received = 0
            while received < 2 * 2**20:
                chunk = sock.recv(65536)
                self.assertTrue(chunk, "the server ended the download itself")
                received += len(chunk)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
