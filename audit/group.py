"""Group commit of the access history: events recorded at the same moment share a commit.

An append holds the chain head's row lock until its commit is on disk, so appends run one
after another and each waits for its own flush of the write-ahead log: one at a time, a
PostgreSQL server tops out at a little over a thousand events a second. Requests record
most events outside a transaction of their own; those recorded by several threads of a
process at once are appended together, in one guarded statement (portal.groupcommit says
how; an event that cannot be written fails alone). An event recorded inside a caller's
transaction is appended in that transaction (audit.append), since it must commit or roll
back with the caller's work.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from audit.append import append_events
from audit.models import AccessEvent
from portal.groupcommit import GroupCommit


def _append(events: list[AccessEvent]) -> None:
    try:
        append_events(connections[DEFAULT_DB_ALIAS], events)
    except BaseException:
        for event in events:  # appended again, alone, by its own thread
            event.pk = event.seq = None
            event._state.adding = True
        raise


appender = GroupCommit(_append)


def append(conn, event: AccessEvent) -> None:  # noqa: ANN001 - a Django connection
    """Write `event` as the chain's next link; raise if it cannot be written.

    Inside the caller's transaction it goes with that transaction. Otherwise, on
    PostgreSQL, events recorded at the same moment by this process's threads share a
    commit.
    """
    if conn.in_atomic_block:
        # Inside the caller's transaction: a savepoint, so a refused write leaves it usable.
        with transaction.atomic(using=conn.alias):
            append_events(conn, [event])
    elif conn.vendor == "postgresql" and conn.alias == DEFAULT_DB_ALIAS:
        appender.submit(event)
    else:
        append_events(conn, [event])
