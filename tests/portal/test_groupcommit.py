"""portal.groupcommit: many threads' items share commits; none is lost, doubled or misreported."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from portal import groupcommit
from portal.groupcommit import GroupCommit

THREADS = 16


class Store:
    """A commit that takes a moment, as a flush to disk does, and can be told to fail."""

    def __init__(self, refuse=lambda items: None) -> None:  # noqa: ANN001
        self.rows: list[int] = []
        self.calls: list[list[int]] = []
        self.refuse = refuse
        self.lock = threading.Lock()

    def commit(self, items: list[int]) -> None:
        with self.lock:
            self.calls.append(list(items))
            first = len(self.calls) == 1
        time.sleep(0.05 if first else 0.002)  # the others queue up behind the first
        self.refuse(items)
        with self.lock:
            self.rows.extend(items)


def run(group: GroupCommit, count: int = THREADS) -> list[str]:
    barrier = threading.Barrier(count)

    def submit(n: int) -> str:
        barrier.wait()
        try:
            group.submit(n)
        except BaseException as exc:  # noqa: BLE001 - what the caller would see
            return type(exc).__name__
        return "ok"

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(submit, range(count)))


def test_every_item_is_committed_once_and_commits_are_shared() -> None:
    store = Store()
    group = GroupCommit(store.commit)
    for _ in range(5):
        store.rows.clear()
        assert run(group) == ["ok"] * THREADS
        assert sorted(store.rows) == list(range(THREADS))
    assert group.commits < 5 * THREADS


def test_a_bad_item_fails_alone() -> None:
    def refuse(items: list[int]) -> None:
        if 7 in items:
            raise ValueError("item 7 cannot be written")

    store = Store(refuse)
    outcomes = run(GroupCommit(store.commit))
    assert outcomes[7] == "ValueError"
    assert outcomes.count("ok") == THREADS - 1
    assert sorted(store.rows) == [n for n in range(THREADS) if n != 7]


def test_an_interrupted_leader_tells_no_one_their_item_was_committed() -> None:
    interrupted = []

    def refuse(items: list[int]) -> None:
        if len(items) > 1 and not interrupted:
            interrupted.append(items)
            raise SystemExit("the process is stopping")

    store = Store(refuse)
    outcomes = run(GroupCommit(store.commit))
    assert interrupted, "no batch of several formed"
    # Only the leader hears it; everyone else's item was committed, by its own thread.
    assert outcomes.count("SystemExit") == 1
    committed = {n for n, outcome in enumerate(outcomes) if outcome == "ok"}
    assert set(store.rows) == committed
    assert len(store.rows) == len(committed)


def test_an_interrupted_waiter_leaves_and_nothing_stalls() -> None:
    gate = threading.Event()

    def held(items: list[int]) -> None:
        gate.wait(10)

    group = GroupCommit(held)
    leader = threading.Thread(target=group.submit, args=(1,), daemon=True)
    leader.start()
    deadline = time.monotonic() + 10
    while not group._busy:
        assert time.monotonic() < deadline
        time.sleep(0.01)

    class Woken:
        """A wait that a Ctrl-C (or a signal handler) interrupts."""

        def wait(self) -> None:
            raise KeyboardInterrupt

        def set(self) -> None:
            pass

    class Interrupted(groupcommit._Waiting):
        def __init__(self, item) -> None:  # noqa: ANN001
            super().__init__(item)
            self.woken = Woken()

    original = groupcommit._Waiting
    groupcommit._Waiting = Interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            group.submit(2)
    finally:
        groupcommit._Waiting = original
    gate.set()
    leader.join(10)
    later = threading.Thread(target=group.submit, args=(3,), daemon=True)
    later.start()
    later.join(10)
    assert not later.is_alive(), "the next item waits for a lead nobody holds"
