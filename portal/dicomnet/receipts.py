"""Receipts: an instance is on record, durably, before the sender hears success.

A sender may purge what it was told was stored. So before the answer, the sealed file is on
disk (file and folder synced) and its StoredObject (which holds the wrapped data key) is
committed with a Receipt naming the association; the full records are filed later, at the
association's end (portal.dicomnet.intake), or after a crash by portal.dicomnet.recovery.

Each file is synced while its receipt commits. Receipts of instances arriving together on
several associations share one database commit (portal.groupcommit).
"""

from __future__ import annotations

import os
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor, wait

from django.db import connection, transaction

from portal import vault
from portal.groupcommit import GroupCommit
from portal.models import Receipt, StoredObject
from portal.rows import insert_all

# Who took a receipt: a receiver starting on the same host can tell a dead process's from
# a live one's (portal.dicomnet.recovery).
PROCESS_TOKEN = uuid.uuid4().hex[:12]
# Files are synced here while their receipts commit (a few at once: the file system merges
# syncs made at the same moment into one journal commit).
_SYNC = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dicom-sync")


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{PROCESS_TOKEN}"


class Receipts:
    """Commits receipts, those arriving together on several associations in one transaction."""

    def __init__(self) -> None:
        self._group = GroupCommit(_commit)

    @property
    def commits(self) -> int:
        """Transactions committed (for tests and benchmarks)."""
        return self._group.commits

    def commit(self, obj: StoredObject, receipt: Receipt) -> None:
        """Make obj's file durable and commit its row and receipt; raise if either failed.

        The file's sync runs beside the commit and the answer waits for both: one sender's
        instances arrive one at a time, so each pays the longer of the two, not their sum.
        A power cut between the two can leave a receipt whose file is lost; the sender heard
        nothing for it, and recovery finds it unreadable and drops it.
        """
        syncing = _SYNC.submit(vault.make_durable, [obj], True)
        try:
            self._group.submit((obj, receipt))
        except BaseException as exc:
            wait([syncing])
            if isinstance(exc, Exception):
                raise RuntimeError("the receipt could not be committed") from exc
            raise
        syncing.result()


def _commit(batch: list[tuple[StoredObject, Receipt]]) -> None:
    if connection.vendor == "sqlite":
        # WAL with synchronous=NORMAL (the settings' default) may lose the last commits in a
        # power cut; a receipt's commit must be on disk when it returns.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=FULL")
    try:
        with transaction.atomic():
            insert_all([obj for obj, _ in batch])
            for obj, receipt in batch:
                receipt.stored_object = obj
            insert_all([receipt for _, receipt in batch])
    except BaseException:
        for obj, receipt in batch:  # committed again, alone, by its own thread
            obj.pk = receipt.pk = None
            obj._state.adding = receipt._state.adding = True
        raise


receipts = Receipts()
