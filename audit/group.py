"""Group commit of the access history: events recorded at the same moment share a commit.

An append holds the chain head's row lock until its commit is on disk, so appends run one
after another and each waits for its own flush of the write-ahead log: one at a time, a
PostgreSQL server tops out at a little over a thousand events a second. Requests record
most events outside a transaction of their own; those recorded by several threads of a
process at once are appended together. The first thread to arrive leads: it takes every
event waiting at that moment, appends them in order under the head's lock in one
transaction, and wakes their threads; events that came in meanwhile are led by the first of
them. record() still returns only once its event is committed; an event the leader could
not write (a bad value, a broken connection) is appended by its own thread, on its own
connection, and only that thread hears why. An event recorded inside a caller's
transaction is appended in that transaction (audit.append), since it must commit or roll
back with the caller's work.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from audit.append import append_events
from audit.models import AccessEvent

# Events in one statement at most: a bounded statement, and a bounded wait for the last.
MAX_BATCH = 64


@dataclass(eq=False)
class _Waiting:
    event: AccessEvent
    woken: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # its thread leads the next batch
    done: bool = False  # the leader wrote it
    on_own: bool = False  # the leader could not: its own thread appends it, on its connection


class GroupAppender:
    """Appends events outside transactions, those waiting at the same moment in one commit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._busy = False
        self.commits = 0  # batches committed (for tests and benchmarks)

    def append(self, conn, event: AccessEvent) -> None:  # noqa: ANN001 - a Django connection
        """Append `event` and return once it is committed; raise if it could not be."""
        item = _Waiting(event)
        with self._lock:
            self._queue.append(item)
            leader = not self._busy
            self._busy = True
        if not leader:
            try:
                item.woken.wait()
            except BaseException:
                self._abandon(item)
                raise
            if not item.lead:
                self._finish(conn, item)
                return
        self._lead(conn)
        self._finish(conn, item)

    def _abandon(self, item: _Waiting) -> None:
        """A waiter was interrupted: take it out of the queue, and pass on a lead it was given.

        One a leader already took is written all the same: an access recorded twice over is
        safer than one not recorded.
        """
        with self._lock:
            if item in self._queue:
                self._queue.remove(item)
            handed = item.lead
        if handed:
            self._pass_on()

    @staticmethod
    def _finish(conn, item: _Waiting) -> None:  # noqa: ANN001
        if item.on_own:
            append_events(conn, [item.event])  # raises this event's own error, if any
        elif not item.done:
            raise RuntimeError("the access event was not written")

    def _lead(self, conn) -> None:  # noqa: ANN001
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._commit(conn, batch)
        finally:
            # Whatever the leader could not write (a bad event, a broken connection, an
            # interruption) its own thread appends alone: nobody hears success unwritten.
            for item in batch:
                if not item.done:
                    _unsaved(item.event)
                    item.on_own = True
                item.woken.set()
            self._pass_on()

    def _pass_on(self) -> None:
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                successor.woken.set()
            else:
                self._busy = False

    def _commit(self, conn, batch: list[_Waiting]) -> None:  # noqa: ANN001
        for start in range(0, len(batch), MAX_BATCH):
            chunk = batch[start : start + MAX_BATCH]
            try:
                append_events(conn, [item.event for item in chunk])
            except Exception:  # noqa: BLE001, S112 - each event is then appended by its own thread
                continue
            for item in chunk:
                item.done = True
            self.commits += 1


def _unsaved(event: AccessEvent) -> None:
    event.pk = event.seq = None
    event._state.adding = True


appender = GroupAppender()
