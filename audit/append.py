"""Appending one event to the chain: the chain head lock, the HMAC, the insert, the head move.

On PostgreSQL an append is one statement in the common case: the process remembers the head
it last saw, and a single UPDATE of the head (guarded by that seq and hash) feeds the INSERT of
the event. If another process appended in between, the guard matches no row, nothing is
written, and the append is redone under the head's row lock (SELECT ... FOR UPDATE), as on
every other database. Either way the head moves in the same transaction as the insert, the
head is the last row a request locks, and the event's HMAC is computed here, outside the
database, from the predecessor the database confirmed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from audit.chain import GENESIS, HASHED_FIELDS, event_mac, head_mac
from audit.models import AccessEvent, ChainHead
from portal.rows import fetch_all

# Raw SQL on the hot path: Django's save() costs several times the statements themselves,
# and every page a patient's data is served on writes at least one event.
_HEAD = ChainHead._meta.db_table
_EVENT_FIELDS = [f for f in AccessEvent._meta.concrete_fields if not f.primary_key]
_SQL: dict[tuple[str, str], str] = {}
# The head this process last wrote or read under its lock, per database: (seq, last hash).
_seen: dict[str, tuple[int, str]] = {}
_seen_lock = threading.Lock()
OPTIMISTIC_TRIES = 4


def hashed_values(event: AccessEvent) -> tuple:
    """Return an event's HASHED_FIELDS values, as verification reads them back."""
    return tuple(getattr(event, name) for name in HASHED_FIELDS)


def _seal(event: AccessEvent, seq: int, prev_hash: str) -> list:
    """Place the event after (seq, prev_hash), compute its HMAC; return the head's new values."""
    event.seq = seq + 1
    event.created_at = timezone.now()
    event.prev_hash = prev_hash
    event.hash = event_mac(prev_hash, hashed_values(event))
    return [event.seq, event.hash, head_mac(event.seq, event.hash)]


def _cached(conn, key: str, build: Callable[[], str]) -> str:
    if (conn.vendor, key) not in _SQL:
        _SQL[conn.vendor, key] = build()
    return _SQL[conn.vendor, key]


def _columns(conn) -> str:
    return ", ".join(conn.ops.quote_name(f.column) for f in _EVENT_FIELDS)


def _guarded_sql(conn, rows: int) -> str:
    """One statement: move the head if it is still (seq, hash), and insert the events if so."""
    casts = ", ".join(f"CAST(%s AS {f.db_type(conn)})" for f in _EVENT_FIELDS)
    values = ", ".join([f"({casts})"] * rows)
    table = AccessEvent._meta.db_table
    seq = conn.ops.quote_name(AccessEvent._meta.get_field("seq").column)
    return (
        f"WITH head AS (UPDATE {_HEAD} SET seq = %s, last_hash = %s, mac = %s "  # noqa: S608
        f"WHERE id = 1 AND seq = %s AND last_hash = %s RETURNING id) "
        f"INSERT INTO {table} ({_columns(conn)}) SELECT * FROM (VALUES {values}) AS v "
        f"WHERE EXISTS (SELECT 1 FROM head) RETURNING id, {seq}"
    )


def _values(conn, event: AccessEvent) -> list:
    return [f.get_db_prep_save(getattr(event, f.attname), conn) for f in _EVENT_FIELDS]


def _seal_all(events: list[AccessEvent], seq: int, prev_hash: str) -> list:
    head: list = []
    for event in events:
        head = _seal(event, seq, prev_hash)
        seq, prev_hash = event.seq, event.hash
    return head


def _guarded(conn, events: list[AccessEvent], seq: int, prev_hash: str) -> bool:
    """Append after (seq, prev_hash) if that is still the head; return whether it was."""
    head = _seal_all(events, seq, prev_hash)
    params = [*head, seq, prev_hash]
    for event in events:
        params += _values(conn, event)
    sql = _cached(conn, f"guarded-{len(events)}", lambda: _guarded_sql(conn, len(events)))
    # One event's statement is prepared on the server once per connection: binding and
    # planning the values afresh would cost more than the insert itself.
    rows = fetch_all(conn, sql, params, prepare=len(events) == 1)
    if not rows:
        return False
    ids = dict((number, pk) for pk, number in rows)  # noqa: C402 - (id, seq) pairs
    for event in events:
        event.pk = ids[event.seq]
    return True


def _locked_head(conn, cursor) -> tuple[int, str]:
    """Lock the chain head and return (seq, last hash): after the share link, never before."""
    lock = " FOR UPDATE" if conn.features.has_select_for_update else ""
    cursor.execute(f"SELECT seq, last_hash FROM {_HEAD} WHERE id = 1{lock}")  # noqa: S608
    row = cursor.fetchone()
    if row is None:
        ChainHead.objects.get_or_create(
            pk=1, defaults={"last_hash": GENESIS, "mac": head_mac(0, GENESIS)}
        )
        return _locked_head(conn, cursor)
    return row


def _insert_sql(conn) -> str:
    marks = ", ".join(["%s"] * len(_EVENT_FIELDS))
    sql = f"INSERT INTO {AccessEvent._meta.db_table} ({_columns(conn)}) VALUES ({marks})"  # noqa: S608
    if conn.features.can_return_columns_from_insert:
        sql += " RETURNING id"
    return sql


def _locked(conn, cursor, events: list[AccessEvent]) -> None:
    """Append under the head's row lock: read it, insert after it, move it."""
    seq, prev_hash = _locked_head(conn, cursor)
    if conn.vendor == "postgresql":
        if not _guarded(conn, events, seq, prev_hash):
            raise RuntimeError("the access history's head moved while it was locked")
        return
    head = _seal_all(events, seq, prev_hash)
    returned = conn.features.can_return_columns_from_insert
    for event in events:
        cursor.execute(_cached(conn, "insert", lambda: _insert_sql(conn)), _values(conn, event))
        event.pk = cursor.fetchone()[0] if returned else cursor.lastrowid
    cursor.execute(f"UPDATE {_HEAD} SET seq = %s, last_hash = %s, mac = %s WHERE id = 1", head)  # noqa: S608


def _head(cursor) -> tuple[int, str] | None:
    cursor.execute(f"SELECT seq, last_hash FROM {_HEAD} WHERE id = 1")  # noqa: S608
    return cursor.fetchone()


def append_events(conn, events: list[AccessEvent]) -> None:
    """Append events in order as the chain's next links, in one statement on PostgreSQL.

    Try the guarded statement after the head this process last saw; when another process
    appended since, read the head again (no lock) and retry a few times, so the head's row
    lock is held only for one statement and its commit. Under heavy contention, or with no
    head known, append under the lock.
    """
    key = f"{conn.alias}:{conn.settings_dict['NAME']}"
    seen = _seen.get(key) if conn.vendor == "postgresql" else None
    done = False
    with conn.cursor() as cursor:
        for _attempt in range(OPTIMISTIC_TRIES):
            if seen is None:
                break
            done = _guarded(conn, events, *seen)
            if done:
                break
            seen = _head(cursor)
        if not done:
            with transaction.atomic(using=conn.alias):
                _locked(conn, cursor, events)
    last = events[-1]
    with _seen_lock:
        _seen[key] = (last.seq, last.hash)
    for event in events:
        event._state.adding = False
