"""Threads of one process recording at the same moment share commits (PostgreSQL)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections, transaction
from django.test import TransactionTestCase

import audit
from audit.models import AccessEvent, Action
from audit.services import verify_chain

THREADS = 12
EACH = 40


def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: runs in .ci/run's PostgreSQL pass")


class GroupCommitTestCase(TransactionTestCase):
    def run_threads(self, work) -> list:  # noqa: ANN001
        barrier = threading.Barrier(THREADS)

        def thread(n: int):  # noqa: ANN202
            try:
                barrier.wait()
                return work(n)
            finally:
                connections.close_all()

        with ThreadPoolExecutor(THREADS) as pool:
            return list(pool.map(thread, range(THREADS)))

    def test_threads_recording_at_once_share_commits_and_keep_one_chain(self) -> None:
        _postgresql_only()
        from audit.group import appender

        commits_before = appender.commits

        def work(n: int) -> list[int]:
            seqs = []
            for i in range(EACH):
                event = audit.record(Action.SEARCH, detail={"thread": n, "n": i})
                # Committed when record() returns: another connection already sees it.
                self.assertTrue(AccessEvent.objects.filter(pk=event.pk, seq=event.seq).exists())
                seqs.append(event.seq)
            return seqs

        seqs = sorted(s for thread in self.run_threads(work) for s in thread)
        total = THREADS * EACH
        self.assertEqual(seqs, list(range(1, total + 1)))
        self.assertEqual(verify_chain(), (True, total, ""))
        self.assertLess(appender.commits - commits_before, total, "no commit was shared")

    def test_one_event_that_cannot_be_written_fails_alone(self) -> None:
        _postgresql_only()

        def work(n: int) -> str:
            try:
                audit.record(Action.SEARCH, detail={"thread": n, "bad": {1, 2} if n == 3 else 0})
            except TypeError:
                return "refused"
            return "written"

        outcomes = self.run_threads(work)
        self.assertEqual(outcomes.count("refused"), 1)
        self.assertEqual(AccessEvent.objects.count(), THREADS - 1)
        self.assertEqual(verify_chain(), (True, THREADS - 1, ""))

    def test_an_event_recorded_in_a_transaction_goes_with_it(self) -> None:
        _postgresql_only()
        audit.record(Action.SEARCH)
        with self.assertRaises(RuntimeError), transaction.atomic():
            audit.record(Action.SEARCH, detail={"rolled": "back"})
            raise RuntimeError("the request failed")
        audit.record(Action.SEARCH)
        self.assertEqual(AccessEvent.objects.count(), 2)
        self.assertEqual(verify_chain(), (True, 2, ""))

    def test_a_leader_interrupted_mid_batch_tells_no_one_their_event_was_written(self) -> None:
        _postgresql_only()
        from unittest import mock

        from audit import group

        real = group.append_events
        calls: list[int] = []

        def interrupted_once(conn, events):  # noqa: ANN001, ANN202
            calls.append(len(events))
            if len(events) > 1 and -1 not in calls:
                calls.append(-1)
                raise SystemExit("the worker is stopping")
            if len(calls) == 1:
                time.sleep(0.3)  # the others queue up behind this first leader
            return real(conn, events)

        def work(n: int) -> tuple[str, int | None]:
            try:
                event = audit.record(Action.SEARCH, detail={"thread": n})
            except SystemExit:
                return "interrupted", None
            return "returned", event.pk

        with mock.patch.object(group, "append_events", interrupted_once):
            outcomes = self.run_threads(work)
        self.assertIn(-1, calls, "no batch was interrupted")
        returned = [pk for kind, pk in outcomes if kind == "returned"]
        self.assertEqual(len(returned), THREADS - 1)  # only the leader hears the interruption
        self.assertNotIn(None, returned)
        self.assertEqual(set(AccessEvent.objects.values_list("pk", flat=True)), set(returned))
        self.assertEqual(verify_chain(), (True, THREADS - 1, ""))

    def test_an_interrupted_waiter_does_not_stall_later_events(self) -> None:
        _postgresql_only()
        from unittest import mock

        from audit import group
        from portal import groupcommit

        real, gate = group.append_events, threading.Event()

        def held(conn, events):  # noqa: ANN001, ANN202
            gate.wait(10)
            return real(conn, events)

        class Interrupted(groupcommit._Waiting):
            def __init__(self, event) -> None:  # noqa: ANN001
                super().__init__(event)
                self.woken = mock.Mock(wait=mock.Mock(side_effect=KeyboardInterrupt))

        def leader() -> None:
            try:
                audit.record(Action.SEARCH, detail={"who": "leader"})
            finally:
                connections.close_all()

        with mock.patch.object(group, "append_events", held):
            first = threading.Thread(target=leader, daemon=True)
            first.start()
            deadline = time.monotonic() + 10
            while not group.appender._busy:  # the first is leading, held at the gate
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.01)
            with (
                mock.patch.object(groupcommit, "_Waiting", Interrupted),
                self.assertRaises(KeyboardInterrupt),
            ):
                audit.record(Action.SEARCH, detail={"who": "interrupted"})
            gate.set()
            first.join(10)
        later = threading.Thread(target=leader, daemon=True)
        later.start()
        later.join(10)
        self.assertFalse(later.is_alive(), "the next event waits for a lead nobody holds")
        whos = sorted(e.detail["who"] for e in AccessEvent.objects.all())
        self.assertEqual(whos, ["leader", "leader"])
        self.assertEqual(verify_chain(), (True, 2, ""))
