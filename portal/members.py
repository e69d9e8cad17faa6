"""Who a signed-in user is in a practice: their membership and its practice, read once a request.

Every staff request needs it (the session middleware, the permission layer, templates), so it
is read with one hand-written query and kept on the user object for the rest of the request.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections

from portal.models import Practice, StaffMember
from portal.rows import from_row


def member_of(user: Any) -> StaffMember | None:
    """Return the user's staff membership with its practice, in one query per request.

    The result is kept on the user object (loaded afresh each request), where `user.staffmember`
    also finds it, so the session middleware, the scope and templates share it.
    """
    relation = StaffMember._meta.get_field("user").remote_field
    if relation.is_cached(user):
        return relation.get_cached_value(user)
    member = _load_member(user.pk)
    if member is not None:
        StaffMember._meta.get_field("user").set_cached_value(member, user)
    relation.set_cached_value(user, member)
    return member


@functools.cache
def _member_sql(vendor: str) -> str:
    """Return the membership query for a database vendor; names come from model metadata only."""
    q = connection.ops.quote_name
    columns = [f"m.{q(f.column)}" for f in StaffMember._meta.concrete_fields]
    columns += [f"p.{q(f.column)}" for f in Practice._meta.concrete_fields]
    practice_col = q(StaffMember._meta.get_field("practice").column)
    practice_pk = q(Practice._meta.pk.column)
    return (
        f"SELECT {', '.join(columns)} "  # noqa: S608
        f"FROM {q(StaffMember._meta.db_table)} m "
        f"JOIN {q(Practice._meta.db_table)} p ON p.{practice_pk} = m.{practice_col} "
        f"WHERE m.{q(StaffMember._meta.get_field('user').column)} = %s"
    )


def _load_member(user_pk: int) -> StaffMember | None:
    """Load a membership and its practice without building an ORM query (the per-request cost).

    select_related would do the same in several times the time, most of it compiling SQL.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    with conn.cursor() as cursor:
        cursor.execute(_member_sql(conn.vendor), [user_pk])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(StaffMember._meta.concrete_fields)
    member = from_row(StaffMember, row[:split], conn)
    practice = from_row(Practice, row[split:], conn)
    StaffMember._meta.get_field("practice").set_cached_value(member, practice)
    return member
