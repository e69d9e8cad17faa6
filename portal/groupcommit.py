"""Group commit: what several threads of a process write at the same moment shares a commit.

A commit waits for the database to flush its log to disk, one after another; writes that
each wait for their own flush top out at the disk's flush rate. Here the first thread to
arrive leads: it takes every item waiting at that moment, commits them in one transaction
and wakes their threads; items that came in meanwhile are led by the first of them.
submit() returns only once its item is committed. Items of a batch that failed (a bad
value, a broken connection of the leader, an interruption) are committed alone by their
own threads, on their own connections, so only the thread whose item is at fault hears why.
A thread interrupted while it waits leaves the queue and passes on a lead it was given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class _Waiting:
    item: Any
    woken: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # its thread leads the next batch
    done: bool = False  # the leader committed it
    on_own: bool = False  # the leader could not: its own thread commits it alone


class GroupCommit:
    """Calls commit(items) for items submitted by several threads, those waiting together at
    once (at most max_batch in one call). commit must write all or nothing and raise if not."""

    def __init__(self, commit: Callable[[list[Any]], None], max_batch: int = 64) -> None:
        self._commit_items = commit
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._busy = False
        self.commits = 0  # batches committed (for tests and benchmarks)

    def submit(self, item: Any) -> None:
        """Commit `item`, with whatever else is waiting; raise if it could not be committed."""
        waiting = _Waiting(item)
        with self._lock:
            self._queue.append(waiting)
            leader = not self._busy
            self._busy = True
        if not leader:
            try:
                waiting.woken.wait()
            except BaseException:
                self._abandon(waiting)
                raise
            if not waiting.lead:
                self._finish(waiting)
                return
        self._lead()
        self._finish(waiting)

    def _abandon(self, waiting: _Waiting) -> None:
        # One a leader already took is committed all the same: for the access history, an
        # access recorded although its request stopped is safer than one not recorded.
        with self._lock:
            if waiting in self._queue:
                self._queue.remove(waiting)
            handed = waiting.lead
        if handed:
            self._pass_on()

    def _finish(self, waiting: _Waiting) -> None:
        if waiting.on_own:
            self._commit_items([waiting.item])  # raises this item's own error, if any
            self.commits += 1
        elif not waiting.done:
            raise RuntimeError("the item was not committed")

    def _lead(self) -> None:
        batch: list[_Waiting] = []
        try:  # from the first step: whatever stops this leader, the next one is woken
            with self._lock:
                batch, self._queue = self._queue, []
            for start in range(0, len(batch), self._max_batch):
                chunk = batch[start : start + self._max_batch]
                try:
                    self._commit_items([w.item for w in chunk])
                except Exception:  # noqa: BLE001, S112 - each is then committed by its own thread
                    continue
                for waiting in chunk:
                    waiting.done = True
                self.commits += 1
        finally:
            for waiting in batch:
                waiting.on_own = not waiting.done
                waiting.woken.set()
            self._pass_on()

    def _pass_on(self) -> None:
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.lead = True
                successor.woken.set()
            else:
                self._busy = False
