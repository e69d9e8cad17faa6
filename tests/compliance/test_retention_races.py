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

from portal import vault
from portal.compliance import retention
from portal.models import Attachment, Instance, Patient, Practice, StoredObject, Study
from sharing.models import DownloadPlan
from tests.base import make_ct_study


def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: runs in .ci/run's PostgreSQL pass")


def _store_a_plan(study_pk: int) -> None:
    """What sharing.plans stores for a download, from another connection."""
    sealed = vault.seal(io.BytesIO(b"DICOMDIR naming Pat Example"))
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


def _done_or_waiting(thread: threading.Thread, timeout: float = 30) -> None:
    """Return once the thread has finished or waits for a lock (no sleeping for a state)."""
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            if not thread.is_alive():
                return
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
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
            thread = threading.Thread(target=_store_a_plan, args=(listed_study.pk,))
            thread.start()
            maker.append(thread)
            _done_or_waiting(thread)
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
