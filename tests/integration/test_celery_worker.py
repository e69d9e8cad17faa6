"""A real Celery worker, fed through Redis, builds encrypted previews after an ingest."""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test import TransactionTestCase
from django_otp import DEVICE_ID_SESSION_KEY

from portal import vault
from portal.celery import app
from portal.models import Patient, Practice, Role, Series, Study
from tests.base import make_ct_study
from tests.integration.services import REDIS_URL, require, start_worker

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
        self.worker = start_worker(env, self.log)
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

    def _route_tasks_to_redis(self) -> None:
        """Make the views' .delay() publish to Redis, where the worker listens."""
        saved = (app.conf.broker_url, app.conf.broker_write_url, app._pool)
        saved_producers = app.amqp._producer_pool
        app.conf.broker_url = app.conf.broker_write_url = REDIS_URL
        # Pools built by earlier tests still point at the in-memory broker.
        app._pool = app.amqp._producer_pool = None

        def restore() -> None:
            if app._pool is not None:
                app._pool.force_close_all()
            app.conf.broker_url, app.conf.broker_write_url, app._pool = saved
            app.amqp._producer_pool = saved_producers

        self.addCleanup(restore)

    def test_the_worker_turns_an_uploaded_batch_into_a_study(self) -> None:
        import base64

        from tests.base import make_staff
        from tests.portal.test_upload import TUS, dicom_bytes

        self._route_tasks_to_redis()
        practice = Practice.objects.create(slug="u", name="Upload Dental")
        user = make_staff("uma", practice, Role.FRONT_DESK)
        self.client.force_login(user)
        session = self.client.session
        session[DEVICE_ID_SESSION_KEY] = user.totpdevice_set.get().persistent_id
        session.save()

        batch = self.client.post("/upload/batches/").json()["batch"]
        data = dicom_bytes("1.2.826.0.1.3680043.8.498.90")
        meta = ",".join(
            f"{k} {base64.b64encode(v.encode()).decode()}"
            for k, v in {"relativePath": "scan/one.dcm", "batch": batch}.items()
        )
        url = self.client.post(
            "/upload/tus/",
            headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": meta},
        )["Location"]
        r = self.client.patch(
            url,
            data,
            content_type="application/offset+octet-stream",
            headers={**TUS, "Upload-Offset": "0"},
        )
        self.assertEqual(r.status_code, 204)

        r = self.client.post(f"/upload/batches/{batch}/finish/")
        self.assertEqual(r.status_code, 202)
        status_url = r.json()["status_url"]
        deadline = time.monotonic() + 90
        while r.status_code == 202 and time.monotonic() < deadline:
            time.sleep(0.3)
            r = self.client.get(status_url)
        log = (Path(settings.DATA_DIR) / "worker.log").read_text()
        self.assertEqual(r.status_code, 200, f"batch not read; worker log:\n{log[-3000:]}")
        self.assertEqual(r.json()["files"][0]["status"], "stored")
        study = Study.objects.get(study_uid="1.2.826.0.1.3680043.8.498.90.1")
        self.assertEqual(r.json()["studies"][0]["url"], f"/studies/{study.code}/")
        self.assertEqual(self.client.get(f"/studies/{study.code}/").status_code, 200)
        self.assertIn("ingest_upload_batch", log)
        self.assertNotIn("Upload^Una", log)
