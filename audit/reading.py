"""Reading the access history in chain order, fast: for verify_audit over millions of events.

The database builds each row's canonical prefix itself (chain.prefix_sql), so only the detail
is converted in Python. A server-side cursor streams the rows in large batches inside
one transaction (nothing is materialised up front), and a thread fetches the next batch while
the caller checks the current one: the database and the HMACs run side by side on two cores.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

from django.db import connection, transaction

from audit.chain import dumps, prefix_sql
from audit.models import AccessEvent


def select_sql(vendor: str) -> str:
    """Return the query: seq, code, prev_hash, hash, canonical prefix, detail as text."""
    code = "code::text" if vendor == "postgresql" else "code"
    detail = "detail::text" if vendor == "postgresql" else "detail"
    return (
        f"SELECT seq, {code}, prev_hash, hash, {prefix_sql(vendor)}, {detail} "  # noqa: S608
        f"FROM {AccessEvent._meta.db_table} ORDER BY seq"
    )


def canonical_detail(text: str, loads=json.loads) -> str:
    """Return the canonical JSON of a detail as the database returns it."""
    return "{}" if text == "{}" else dumps(loads(text))


class Macs:
    """HMAC-SHA256 with the key's inner and outer pads hashed once, not once per event."""

    def __init__(self, key: bytes) -> None:
        block = key.ljust(64, b"\0") if len(key) <= 64 else hashlib.sha256(key).digest()
        block = block.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def hex(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


_DONE = object()


def rows(batch: int = 20_000) -> Iterator[tuple[Any, ...]]:
    """Yield every event's row (see select_sql) in chain order; stop early when closed."""
    if connection.vendor != "postgresql":
        # SQLite answers from the same process: a second thread only adds hand-offs.
        with connection.cursor() as cursor:
            cursor.execute(select_sql(connection.vendor))
            while chunk := cursor.fetchmany(batch):
                yield from chunk
        return
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(select_sql(connection.vendor))
        raw = cursor.cursor
        if hasattr(raw, "itersize"):
            raw.itersize = batch
        batches: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()
        failure: list[BaseException] = []

        def fetch() -> None:
            try:
                while not stop.is_set():
                    chunk = raw.fetchmany(batch)
                    if not chunk:
                        break
                    batches.put(chunk)
            except BaseException as exc:  # handed to the reading thread below
                failure.append(exc)
            finally:
                batches.put(_DONE)

        worker = threading.Thread(target=fetch, name="verify-audit-fetch", daemon=True)
        worker.start()
        try:
            while (chunk := batches.get()) is not _DONE:
                yield from chunk
        finally:
            stop.set()
            while worker.is_alive():
                try:
                    batches.get(timeout=0.1)
                except queue.Empty:
                    pass
            worker.join()
        if failure:
            raise failure[0]
