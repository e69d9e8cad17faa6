"""Group commit of the access history: events recorded at the same moment share a commit.

An append holds the chain head's row lock until its commit is on disk, so appends run one
after another and each waits for its own flush of the write-ahead log: one at a time, a
PostgreSQL server tops out at a little over a thousand events a second. Requests record
most events outside a transaction of their own; those recorded by several threads of a
process at once are appended together. The first thread to arrive leads: it takes every
event waiting at that moment, appends them in order under the head's lock in one
transaction, and wakes their threads; events that came in meanwhile are led by the first of
them. record() still returns only once its event is committed. An event recorded inside a
caller's transaction is appended in that transaction (audit.append), since it must commit
or roll back with the caller's work.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from audit.append import append_events
from audit.models import AccessEvent

# Events in one statement at most: a bounded number of statement shapes to prepare.
MAX_BATCH = 64


@dataclass(eq=False)
class _Waiting:
    event: AccessEvent
    woken: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    error: BaseException | None = None


class GroupAppender:
    """Appends events outside transactions, those waiting at the same moment in one commit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._busy = False
        self.commits = 0  # transactions committed (for tests and benchmarks)

    def append(self, conn, event: AccessEvent) -> None:  # noqa: ANN001 - a Django connection
        """Append `event` and return once it is committed; raise if it could not be."""
        item = _Waiting(event)
        with self._lock:
            self._queue.append(item)
            leader = not self._busy
            self._busy = True
        if not leader:
            item.woken.wait()
            if not item.lead:
                self._raise(item)
                return
        self._lead(conn)
        self._raise(item)

    @staticmethod
    def _raise(item: _Waiting) -> None:
        if item.error is not None:
            raise item.error

    def _lead(self, conn) -> None:  # noqa: ANN001
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._commit(conn, batch)
        finally:
            for item in batch:
                item.lead = False
                item.woken.set()
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.woken.set()
                else:
                    self._busy = False

    def _commit(self, conn, batch: list[_Waiting]) -> None:  # noqa: ANN001
        for start in range(0, len(batch), MAX_BATCH):
            self._commit_some(conn, batch[start : start + MAX_BATCH])

    def _commit_some(self, conn, batch: list[_Waiting]) -> None:  # noqa: ANN001
        if len(batch) > 1:
            try:
                append_events(conn, [item.event for item in batch])
            # One event that cannot be written must not take the others with it: each is
            # then appended alone, and only its own thread hears why.
            except Exception:  # noqa: BLE001
                for item in batch:
                    _unsaved(item.event)
            else:
                self.commits += 1
                return
        for item in batch:
            try:
                append_events(conn, [item.event])
            except BaseException as exc:  # noqa: BLE001 - handed to the event's own thread
                _unsaved(item.event)
                item.error = exc
            else:
                self.commits += 1


def _unsaved(event: AccessEvent) -> None:
    event.pk = event.seq = None
    event._state.adding = True


appender = GroupAppender()
