"""Named locks held to the end of a transaction, for checks that must not run side by side.

A limit checked by counting rows (wrong passwords, guesses at links) holds only if no two
requests count before either has written: parallel requests would otherwise all see the
same count, or see rows in an order their ids do not give. PostgreSQL serialises them with
an advisory lock released at commit; SQLite, the laptop's single-process database, with
process locks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from django.db import connection, transaction

# SQLite: a fixed set of process locks; a name takes the one its hash picks.
_STRIPES = [threading.Lock() for _ in range(64)]


@contextmanager
def held_to_commit(*names: str) -> Iterator[None]:
    """Run the block in a transaction that no other block holding any of `names` overlaps.

    Several names are taken in one order everywhere, so two blocks never wait on each other.
    """
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            for name in sorted(set(names)):
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [name])
            yield
        return
    stripes = sorted({hash(name) % len(_STRIPES) for name in names})
    with ExitStack() as held:
        for stripe in stripes:
            held.enter_context(_STRIPES[stripe])
        with transaction.atomic():
            yield
