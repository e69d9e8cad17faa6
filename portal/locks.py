"""Named locks held to the end of a transaction, for checks that must not run side by side.

A limit checked by counting rows (wrong passwords, guesses at links) holds only if no two
requests count before either has written: parallel requests would otherwise all see the
same count, or see rows in an order their ids do not give. PostgreSQL serialises them with
an advisory lock released at commit; SQLite, the laptop's single-process database, with a
process lock per name.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction

_LOCAL: dict[str, threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


def _local_lock(name: str) -> threading.Lock:
    with _LOCAL_GUARD:
        return _LOCAL.setdefault(name, threading.Lock())


@contextmanager
def held_to_commit(name: str) -> Iterator[None]:
    """Run the block in a transaction that no other block holding `name` overlaps."""
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [name])
            yield
    else:
        with _local_lock(name), transaction.atomic():
            yield
