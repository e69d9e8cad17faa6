"""A real Celery worker, fed through Redis, builds encrypted previews after an ingest."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test import TransactionTestCase

from portal import vault
from portal.celery import app
from portal.models import Patient, Practice, Series
from tests.base import make_ct_study
from tests.integration.services import REDIS_URL, require

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or "postgres"
    return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class CeleryWorkerTestCase(TransactionTestCase):
    def setUp(self) -> None:
        require(REDIS_URL, "Redis")
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        env = {
            **os.environ,
            "PORTAL_MODE": "local",
            "PORTAL_DATA_DIR": str(settings.DATA_DIR),
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "DJANGO_SETTINGS_MODULE": "portal.settings",
        }
        self.log = open(Path(settings.DATA_DIR) / "worker.log", "w")  # noqa: SIM115
        self.worker = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.addCleanup(self._stop_worker)
        saved = app.conf.task_always_eager
        app.conf.task_always_eager = False
        self.addCleanup(setattr, app.conf, "task_always_eager", saved)

    def _stop_worker(self) -> None:
        self.worker.terminate()
        self.worker.wait(20)
        self.log.close()

    def test_the_worker_builds_an_encrypted_thumbnail(self) -> None:
        from viewer.tasks import build_previews

        practice = Practice.objects.create(slug="w", name="Worker Dental")
        patient = Patient.objects.create(practice=practice, patient_id="W-1", name="Wanda Worker")
        study = make_ct_study(patient, n=3)
        series = study.series.get()
        with app.connection_for_write(REDIS_URL) as conn:
            build_previews.apply_async(args=[[series.pk], []], connection=conn)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            series = Series.objects.get(pk=series.pk)
            if series.thumbnail_id:
                break
            time.sleep(0.3)
        log = (Path(settings.DATA_DIR) / "worker.log").read_text()
        self.assertIsNotNone(series.thumbnail_id, f"no thumbnail; worker log:\n{log[-3000:]}")
        self.assertTrue(vault.read_bytes(series.thumbnail).startswith(b"\xff\xd8\xff"))
        self.assertNotIn("Wanda", log)
        self.assertIn("build_previews", log)
