"""Shredding a study while another process stores something derived from it (PostgreSQL).

A download plan, thumbnail or stored volume made from a study while retention shreds it must
be shredded with it or never stored: a file left with a live key and no record pointing at it
would keep the patient's data readable after the purge.
"""

from __future__ import annotations

import io
import threading
import time
from datetime import date
from unittest import mock

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.test import TestCase, TransactionTestCase

import audit
from audit.models import Action
from portal import vault
from portal.compliance import retention
from portal.models import Attachment, Instance, Patient, Practice, Role, StoredObject, Study
from sharing.models import DownloadPlan, ShareLink
from sharing.services import issue_link, lock_link
from tests.base import make_ct_study, make_staff


def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: runs in .ci/run's PostgreSQL pass")


def _store_a_plan(study_pk: int, pids: list[int]) -> None:
    """What sharing.plans stores for a download, from another connection (its pid in pids)."""
    sealed = vault.seal(io.BytesIO(b"DICOMDIR naming Pat Example"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pids.append(cursor.fetchone()[0])
    try:
        with transaction.atomic():
            sealed.save(force_insert=True)
            DownloadPlan.objects.create(
                key="race", scope="share:race", study_id=study_pk, blob=sealed
            )
    except IntegrityError:
        vault.discard_unsaved(sealed)  # the study went away first: nothing is kept
    finally:
        connections.close_all()


def _done_or_waiting(thread: threading.Thread, pids: list[int], timeout: float = 30) -> None:
    """Return once the thread has finished or its connection waits for a lock (no sleeping
    for a state)."""
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            if not thread.is_alive():
                return
            if pids:
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = %s", [pids[0]]
                )
                if cursor.fetchone()[0]:
                    return
            time.sleep(0.01)
    raise AssertionError("the plan was neither stored nor waiting")


class ShredWhilePlanStoredTestCase(TransactionTestCase):
    def test_a_plan_stored_while_the_study_is_listed_is_shredded_or_never_kept(self) -> None:
        _postgresql_only()
        practice = Practice.objects.create(slug="p", name="P")
        patient = Patient.objects.create(
            practice=practice, patient_id="1", name="Pat Example", birth_date=date(1980, 5, 17)
        )
        study = make_ct_study(patient)
        real = retention.objects_of
        maker: list[threading.Thread] = []

        def listed_then_a_plan_arrives(listed_study: Study) -> list[StoredObject]:
            found = real(listed_study)
            pids: list[int] = []
            thread = threading.Thread(target=_store_a_plan, args=(listed_study.pk, pids))
            thread.start()
            maker.append(thread)
            _done_or_waiting(thread, pids)
            return found

        with mock.patch.object(retention, "objects_of", listed_then_a_plan_arrives):
            retention.shred_study(Study.objects.get(pk=study.pk))
        maker[0].join(30)

        self.assertFalse(Study.objects.filter(pk=study.pk).exists())
        live = StoredObject.objects.filter(wrapped_key__isnull=False)
        self.assertEqual(list(live), [], "a live object outlived the study it was made from")


class ThumbnailOfShreddedAttachmentTestCase(TestCase):
    def test_a_thumbnail_made_for_a_photo_shredded_meanwhile_is_not_kept(self) -> None:
        from tests.sharing.helpers import add_attachments
        from viewer import previews

        practice = Practice.objects.create(slug="p", name="P")
        patient = Patient.objects.create(practice=practice, patient_id="1", name="Pat Example")
        photo, pdf = add_attachments(make_ct_study(patient))
        real = previews.attachment_thumbnail

        def drawn_then_purged(attachment: Attachment) -> bytes:
            data = real(attachment)
            retention.shred_attachment(Attachment.objects.get(pk=attachment.pk))
            return data

        with mock.patch.object(previews, "attachment_thumbnail", drawn_then_purged):
            drawn = previews.ensure_attachment_thumbnail(Attachment.objects.get(pk=photo.pk))
        self.assertTrue(drawn.startswith(b"\xff\xd8"))
        orphans = (
            StoredObject.objects.filter(wrapped_key__isnull=False)
            .exclude(pk__in=Attachment.objects.values("blob"))
            .exclude(pk__in=Instance.objects.values("blob"))
        )
        self.assertEqual(list(orphans), [], "the photo's thumbnail outlived it, readable")


class ShredInLockOrderTestCase(TransactionTestCase):
    def test_a_purge_waits_for_a_download_of_the_same_link_without_deadlock(self) -> None:
        """The daily purge (one transaction per purge) meets a recipient holding the source
        study's link: the purge must lock every link before recording anything, or it holds
        the audit head the recipient needs while it waits for the link (a deadlock)."""
        _postgresql_only()
        practice = Practice.objects.create(slug="p", name="P")
        staff = make_staff("alice", practice, Role.ADMIN)
        patient = Patient.objects.create(
            practice=practice, patient_id="1", name="Pat Example", birth_date=date(1980, 5, 17)
        )
        study = make_ct_study(patient)
        copy = make_ct_study(patient, uid_root="1.2.826.0.1.3680043.8.498.2")  # a de-id copy
        source_link = issue_link(
            study=study, created_by=staff, password="a-long-password-1", recipient_kind="patient"
        )
        copy_link = issue_link(
            study=copy, created_by=staff, password="a-long-password-2", recipient_kind="patient"
        )
        ShareLink.objects.filter(pk=copy_link.share.pk).update(source_study=study)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            purge_pid = cursor.fetchone()[0]
        holding = threading.Event()
        errors: list[BaseException] = []

        def recipient_download() -> None:
            try:
                with transaction.atomic():
                    lock_link(source_link.share.pk)  # as a download does, then the audit head
                    holding.set()
                    _wait_until_waiting(purge_pid)
                    audit.record(Action.DOWNLOAD, practice=practice, detail={"n": 1})
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                errors.append(exc)
            finally:
                connections.close_all()

        recipient = threading.Thread(target=recipient_download)
        recipient.start()
        self.assertTrue(holding.wait(30))
        try:
            with transaction.atomic():  # as retention.execute() runs each purge
                retention.shred_study(Study.objects.get(pk=study.pk))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        recipient.join(30)
        self.assertEqual(errors, [])
        self.assertFalse(Study.objects.filter(pk__in=[study.pk, copy.pk]).exists())


def _wait_until_waiting(pid: int, timeout: float = 30) -> None:
    """Return once the connection `pid` waits for a lock (no sleeping for a state)."""
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = %s", [pid])
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the purge never waited for the recipient's link")
