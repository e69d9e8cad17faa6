"""Filing what a receiver acknowledged but did not file before it stopped (killed, OOM, power).

Its receipts (portal.dicomnet.receipts) are still in the database with their stored objects.
Each is decrypted and run through the same checks and the same filing as at an
association's end, and its arrival says "recovered after an interruption". Run when a
receiver starts (receipts of dead processes of this host at once) and by a periodic task
(any receipt older than the grace period, so that a live association's are left to it).
"""

from __future__ import annotations

import io
import logging
import os
import socket
from contextlib import nullcontext
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from portal import vault
from portal.dicomnet.intake import FLUSH_EVERY, Sender, file_receipted
from portal.dicomnet.receipts import process_name
from portal.ingest.pipeline import Context, Outcome, discard, process
from portal.ingest.sources import Entry
from portal.models import Practice, Receipt

logger = logging.getLogger(__name__)


class _Receipted(Context):
    """Runs ingest's checks on a file already sealed: reading it is all its 'storing' does."""

    def seal(self, src):  # noqa: ANN001, ANN201
        while src.read(1 << 20):
            pass
        return None


def grace() -> timedelta:
    return timedelta(seconds=settings.PORTAL_DICOM_RECEIPT_GRACE_SECONDS)


def _dead_here() -> list[str]:
    """Processes of this host that took receipts and are gone (this one's earlier lives)."""
    host, me = socket.gethostname(), process_name()
    dead = []
    for name in Receipt.objects.values_list("process", flat=True).distinct():
        parts = name.rsplit(":", 2)
        if len(parts) != 3 or parts[0] != host or name == me:
            continue
        try:
            pid = int(parts[1])
        except ValueError:
            continue
        if pid == os.getpid() or not _alive(pid):
            dead.append(name)
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(at_start: bool = False) -> int:
    """File every receipt left behind; return how many instances were filed."""
    left = Q(received_at__lte=timezone.now() - grace())
    if at_start:
        left |= Q(process__in=_dead_here())
    groups = list(Receipt.objects.filter(left).values_list("practice_id", "association").distinct())
    filed = 0
    for practice_id, association in groups:
        try:
            filed += _recover(practice_id, association, left)
        # One line for the operator, no traceback; the receipts stay for the next run.
        except Exception as exc:  # noqa: BLE001
            logger.error("dicom receiver: filing receipts failed: %s", type(exc).__name__)
        finally:
            connection.close_if_unusable_or_obsolete()
    if filed:
        logger.warning("dicom receiver: filed %d instances received before an interruption", filed)
    return filed


def _recover(practice_id: int, association, left: Q) -> int:  # noqa: ANN001
    practice = Practice.objects.get(pk=practice_id)
    receipted = Receipt.objects.filter(left, association=association)
    filed, last = 0, 0
    while True:
        chunk = list(
            receipted.filter(pk__gt=last)
            .select_related("stored_object", "peer")
            .order_by("pk")[:FLUSH_EVERY]
        )
        if not chunk:
            return filed
        last = chunk[-1].pk
        ctx = _Receipted(practice, None)
        batch, refused = [], []
        for index, receipt in enumerate(chunk):
            out = _check(index, receipt, ctx)
            if out.status == "ok":
                out.blob = receipt.stored_object
                batch.append(out)
            else:
                refused.append(receipt)
        if batch:
            first = chunk[0]
            sender = Sender(first.peer, first.calling_ae, first.address, recovered=True)
            filed += file_receipted(batch, practice, receipted, sender).stored
        # Refused now (a duplicate filed meanwhile, or damaged): not kept, as at first filing;
        # only by whoever takes its receipt.
        for receipt in refused:
            if Receipt.objects.filter(pk=receipt.pk).delete()[0]:
                discard([receipt.stored_object])


def _check(index: int, receipt: Receipt, ctx: Context) -> Outcome:
    try:
        data = vault.read_bytes(receipt.stored_object)
    except (vault.VaultIntegrityError, OSError):
        return Outcome(index=index, name=receipt.name, status="rejected", reason="unreadable")
    entry = Entry(receipt.name, len(data), lambda: nullcontext(io.BytesIO(data)))
    return process(index, entry, ctx)
