"""Receipts: an instance is on record, durably, before the sender hears success.

A sender may purge what it was told was stored. So before the answer, the sealed file is on
disk (file and folder synced) and its StoredObject (which holds the wrapped data key) is
committed with a Receipt naming the association; the full records are filed later, at the
association's end (portal.dicomnet.intake), or after a crash by portal.dicomnet.recovery.

Each file is synced while its receipt commits. Group commit: receipts of instances arriving
together on several associations share one database commit. The first to arrive leads: it
takes every receipt waiting at that moment, commits them in one transaction and wakes their
threads; receipts that came in meanwhile are led by the first of them.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from django.db import connection, transaction

from portal import vault
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


@dataclass(eq=False)
class _Waiting:
    obj: StoredObject
    receipt: Receipt
    woken: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    error: BaseException | None = None


class GroupCommit:
    """Commits receipts, those waiting at the same moment in one transaction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._busy = False
        self.commits = 0  # transactions committed (for tests and benchmarks)

    def commit(self, obj: StoredObject, receipt: Receipt) -> None:
        """Make obj's file durable and commit its row and receipt; raise if either failed.

        The file's sync runs beside the commit and the answer waits for both: one sender's
        instances arrive one at a time, so each pays the longer of the two, not their sum.
        A power cut between the two can leave a receipt whose file is lost; the sender heard
        nothing for it, and recovery finds it unreadable and drops it.
        """
        syncing = _SYNC.submit(vault.make_durable, [obj], True)
        try:
            self._join(obj, receipt)
        except BaseException:
            wait([syncing])
            raise
        syncing.result()

    def _join(self, obj: StoredObject, receipt: Receipt) -> None:
        item = _Waiting(obj, receipt)
        with self._lock:
            self._queue.append(item)
            leader = not self._busy
            self._busy = True
        if not leader:
            item.woken.wait()
            if not item.lead:
                self._raise(item)
                return
        self._lead()
        self._raise(item)

    @staticmethod
    def _raise(item: _Waiting) -> None:
        if item.error is not None:
            raise RuntimeError("the receipt could not be committed") from item.error

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        error: BaseException | None = None
        try:
            _commit(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to every thread of the batch
            error = exc
        self.commits += 1
        for item in batch:
            item.error, item.lead = error, False
            item.woken.set()
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                successor.woken.set()
            else:
                self._busy = False


def _commit(batch: list[_Waiting]) -> None:
    if connection.vendor == "sqlite":
        # WAL with synchronous=NORMAL (the settings' default) may lose the last commits in a
        # power cut; a receipt's commit must be on disk when it returns.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=FULL")
    try:
        with transaction.atomic():
            insert_all([item.obj for item in batch])
            for item in batch:
                item.receipt.stored_object = item.obj
            insert_all([item.receipt for item in batch])
    except BaseException:
        for item in batch:
            item.obj.pk = None
            item.obj._state.adding = True
        raise


receipts = GroupCommit()
