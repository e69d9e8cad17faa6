"""Signed checkpoints: in the object store (under object lock where the bucket has it),
emailed to the privacy officer, written by the daily beat task; concurrent writers."""

from __future__ import annotations

import threading
import uuid

import boto3
from django.conf import settings
from django.core import mail
from django.db import connection, connections
from django.test import TestCase, TransactionTestCase, override_settings

import audit
from audit import checkpoints, tasks
from audit.models import AccessEvent, Action
from audit.services import verify_chain
from tests.portal.s3server import s3_endpoint, s3_storage_settings


def _client():
    return boto3.client(
        "s3", endpoint_url=s3_endpoint(), region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",  # noqa: S106
    )  # fmt: skip


class ObjectLockTestCase(TestCase):
    def setUp(self) -> None:
        self.bucket = f"audit-{uuid.uuid4().hex[:12]}"
        storage = s3_storage_settings(self.bucket)
        client = _client()
        client.delete_bucket(Bucket=self.bucket)
        client.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True)
        patcher = override_settings(STORAGES={**settings.STORAGES, "vault": storage})
        patcher.enable()
        self.addCleanup(patcher.disable)

    def test_a_checkpoint_is_written_under_compliance_lock_and_read_back(self) -> None:
        audit.record(Action.SEARCH)
        report, written = tasks.verify_and_checkpoint()
        self.assertTrue(report.ok)
        self.assertIn("object lock (compliance)", written)
        [item] = _client().list_object_versions(Bucket=self.bucket)["Versions"]
        head = _client().head_object(Bucket=self.bucket, Key=item["Key"])
        self.assertEqual(head["ObjectLockMode"], "COMPLIANCE")
        with self.assertRaises(_client().exceptions.ClientError):
            _client().delete_object(
                Bucket=self.bucket, Key=item["Key"], VersionId=item["VersionId"]
            )
        [mark] = checkpoints.load_all()
        self.assertEqual((mark.valid, mark.seq), (True, 1))


class DailyCheckpointTestCase(TestCase):
    def setUp(self) -> None:
        prefix = f"audit-checkpoints-test-{uuid.uuid4().hex}"
        patcher = override_settings(
            PORTAL_AUDIT_CHECKPOINT_PREFIX=prefix,
            PORTAL_AUDIT_CHECKPOINT_EMAILS=["privacy@example.org"],
        )
        patcher.enable()
        self.addCleanup(patcher.disable)

    def test_beat_runs_the_verification_daily(self) -> None:
        from portal.celery import app

        app.loader.import_default_modules()
        entry = settings.CELERY_BEAT_SCHEDULE["verify-audit"]
        self.assertEqual(entry["schedule"], 24 * 3600)
        self.assertIn(entry["task"], app.tasks)
        for name, scheduled in settings.CELERY_BEAT_SCHEDULE.items():
            with self.subTest(name=name):
                self.assertIn(scheduled["task"], app.tasks)

    def test_the_checkpoint_is_emailed_to_the_privacy_officer(self) -> None:
        audit.record(Action.VIEW_STUDY, detail={"note": "x"})
        result = tasks.verify_and_checkpoint_task.delay().get()
        self.assertEqual((result["ok"], result["events"]), (True, 1))
        [message] = mail.outbox
        self.assertEqual(message.to, ["privacy@example.org"])
        self.assertIn('"signature"', message.body)
        self.assertIn(checkpoints.public_key_b64(), message.body)

    def test_a_failed_verification_is_emailed_and_writes_no_checkpoint(self) -> None:
        audit.record(Action.SEARCH)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("ALTER TABLE audit_accessevent DISABLE TRIGGER USER")
            cursor.execute("UPDATE audit_accessevent SET action = 'download'")
        report, written = tasks.verify_and_checkpoint()
        self.assertEqual((report.ok, written), (False, ""))
        self.assertIn("FAILED", mail.outbox[0].subject)
        self.assertIn("was altered", mail.outbox[0].body)
        self.assertEqual(checkpoints.load_all(), [])


class ConcurrentWritersTestCase(TransactionTestCase):
    def test_parallel_writers_keep_one_linear_chain(self) -> None:
        """Threads writing at once (on PostgreSQL, real parallel transactions) never fork it."""

        def write() -> None:
            try:
                for _ in range(15):
                    audit.record(Action.SEARCH)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=write) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seqs = list(AccessEvent.objects.order_by("seq").values_list("seq", flat=True))
        self.assertEqual(seqs, list(range(1, 61)))
        self.assertEqual(verify_chain()[:2], (True, 60))
