"""Per-request reads without the ORM compiler: one row, converted as the ORM converts it.

Building an ORM query costs more than serving a warm slice; these helpers read the same rows
with hand-written SQL whose names all come from model metadata.
"""

from __future__ import annotations

import functools
from contextlib import nullcontext
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections


@functools.cache
def _columns(model: Any) -> tuple[tuple[Any, Any], ...]:
    return tuple((f, f.get_col(model._meta.db_table)) for f in model._meta.concrete_fields)


def from_row(model: Any, values: tuple[Any, ...], conn: Any) -> Any:
    """Build a model instance from raw column values, converted the way the ORM converts them."""
    converted = []
    for (field, expression), value in zip(_columns(model), values, strict=True):
        for converter in conn.ops.get_db_converters(expression) + field.get_db_converters(conn):
            value = converter(value, expression, conn)
        converted.append(value)
    return model.from_db(conn.alias, None, converted)


def fetch_one(conn: Any, sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    """Run a hot-path read and return its first row; on PostgreSQL, planned once per connection.

    Django binds parameters on the client, so PostgreSQL parses and plans each query afresh:
    for the link-and-series join that is most of a warm slice's database time. These few
    statements are prepared on the server instead (persistent connections keep them), and
    still pass through Django's execute wrappers and query log. (A pooler in transaction mode in
    front of PostgreSQL must then support protocol-level prepared statements: PgBouncer 1.21+.)
    """
    return _run_on_server(conn, sql, params, _first_row)


def fetch_all(
    conn: Any, sql: str, params: list[Any], *, prepare: bool = True
) -> list[tuple[Any, ...]]:
    """Run a hot-path statement and return all its rows, prepared as fetch_one prepares.

    prepare=False for a statement of many rows of values: PostgreSQL keys a prepared
    statement by its parameters' types too (an int is sent as int2, int4 or int8 by its
    size, a None as unknown), so each batch would prepare, and crowd out, another. Its
    values are still sent apart from the statement, not quoted into it in Python.
    """
    return _run_on_server(conn, sql, params, _all_rows, prepare=prepare)


def _first_row(cursor: Any) -> tuple[Any, ...] | None:
    return cursor.fetchone()


def _all_rows(cursor: Any) -> list[tuple[Any, ...]]:
    return cursor.fetchall()


def _run_on_server(
    conn: Any, sql: str, params: list[Any], rows: Any, *, prepare: bool = True
) -> Any:
    with conn.cursor() as cursor:
        if conn.vendor != "postgresql":
            cursor.execute(sql, params)
            return rows(cursor)
        logged = cursor.debug_sql(sql, params) if conn.queries_logged else nullcontext()
        with logged:
            executor = functools.partial(_run_prepared, rows=rows, prepare=prepare)
            return cursor._execute_with_wrappers(sql, params, many=False, executor=executor)


def _run_prepared(
    sql: str,
    params: list[Any],
    many: bool,  # noqa: ARG001, FBT001 - the executor signature Django calls
    context: dict[str, Any],
    rows: Any,
    prepare: bool,
) -> Any:
    import psycopg

    conn = context["connection"]
    conn.validate_no_broken_transaction()
    raw = conn.connection
    if raw.prepare_threshold is None:
        # Django turns preparing off per connection; allow it for statements that ask
        # (prepare=True). Django's own cursors bind on the client and never prepare.
        raw.prepare_threshold = 2**31 - 1
    with conn.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params, prepare=prepare)
        return rows(cursor)


@functools.cache
def row_sql(model: Any, field_name: str, vendor: str) -> str:
    q = connection.ops.quote_name
    columns = ", ".join(q(f.column) for f in model._meta.concrete_fields)
    column = q(model._meta.get_field(field_name).column)
    return f"SELECT {columns} FROM {q(model._meta.db_table)} WHERE {column} = %s"  # noqa: S608


def fetch_row(model: Any, field_name: str, value: Any) -> Any:
    """Return the instance whose unique field equals value, read fresh, without the ORM compiler.

    For per-request reads on the hot path (a share link's status on every slice); the instance
    is the same one `model.objects.get()` would return.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    try:
        prepared = model._meta.get_field(field_name).get_db_prep_value(value, conn)
    except ValidationError:
        return None
    row = fetch_one(conn, row_sql(model, field_name, conn.vendor), [prepared])
    return from_row(model, row, conn) if row is not None else None


def fetch_row_joined(
    model: Any, field_name: str, value: Any, extra_sql: str, extra_value: Any, width: int
) -> tuple[Any, tuple[Any, ...] | None]:
    """Return the row as fetch_row does, plus the one row of `extra_sql`, in one round trip.

    extra_sql is a query of `width` columns with one parameter (extra_value); its row is None
    when it finds nothing. The hot path asks for a link and the series it opens at once.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    try:
        prepared = model._meta.get_field(field_name).get_db_prep_value(value, conn)
    except ValidationError:
        return None, None
    q = conn.ops.quote_name
    columns = ", ".join(f"r.{q(f.column)}" for f in model._meta.concrete_fields)
    sql = (
        f"SELECT {columns}, x.* FROM {q(model._meta.db_table)} r "  # noqa: S608
        f"LEFT JOIN ({extra_sql}) x ON 1=1 "
        f"WHERE r.{q(model._meta.get_field(field_name).column)} = %s"
    )
    row = fetch_one(conn, sql, [extra_value, prepared])
    if row is None:
        return None, None
    split = len(model._meta.concrete_fields)
    extra = tuple(row[split:])
    return from_row(model, row[:split], conn), (extra if extra[0] is not None else None)


def _prepared(model: Any, name: str, value: Any, conn: Any) -> Any:
    return model._meta.get_field(name).get_db_prep_value(value, conn)


@functools.cache
def _related_sql(model: Any, relations: tuple[str, ...], names: tuple[str, ...], vendor: str):
    q = connection.ops.quote_name
    aliases: dict[str, tuple[str, Any]] = {"": ("t0", model)}
    joins = []
    for path in relations:
        parent_path, _, name = path.rpartition("__")
        parent_alias, parent = aliases[parent_path]
        field = parent._meta.get_field(name)
        related = field.related_model
        alias = f"t{len(aliases)}"
        joins.append(
            f"JOIN {q(related._meta.db_table)} {alias} "
            f"ON {alias}.{q(field.target_field.column)} = {parent_alias}.{q(field.column)}"
        )
        aliases[path] = (alias, related)
    columns = ", ".join(
        f"{alias}.{q(f.column)}" for alias, m in aliases.values() for f in m._meta.concrete_fields
    )
    where = " AND ".join(f"t0.{q(model._meta.get_field(n).column)} = %s" for n in names)
    sql = f"SELECT {columns} FROM {q(model._meta.db_table)} t0 {' '.join(joins)} WHERE {where}"  # noqa: S608
    return sql, [(path, m) for path, (_, m) in aliases.items()]


def fetch_related(model: Any, relations: tuple[str, ...], **filters: Any) -> Any:
    """Return the one row the filters (on unique fields) find, with its relations, or None.

    As `model.objects.select_related(*relations).filter(**filters).first()` for a unique
    match, in one query without the ORM compiler. Relations are non-null foreign keys,
    each named after one already listed ("series", then "series__study").
    """
    conn = connections[DEFAULT_DB_ALIAS]
    names = tuple(sorted(filters))
    sql, models = _related_sql(model, tuple(relations), names, conn.vendor)
    try:
        params = [_prepared(model, n, filters[n], conn) for n in names]
    except ValidationError:
        return None
    row = fetch_one(conn, sql, params)
    if row is None:
        return None
    built: dict[str, Any] = {}
    start = 0
    for path, m in models:
        width = len(m._meta.concrete_fields)
        built[path] = from_row(m, row[start : start + width], conn)
        start += width
    for path, obj in built.items():
        if path:
            parent_path, _, name = path.rpartition("__")
            setattr(built[parent_path], name, obj)
    return built[""]


def fetch_column(model: Any, name: str, since_field: str, since: Any, **equal: Any) -> list:
    """Return one field's values where the fields equal the given values (None: IS NULL) and
    since_field is later than since, in since_field order; without the ORM compiler.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    q = conn.ops.quote_name
    meta = model._meta
    conditions, params = [], []
    for key in sorted(equal):
        column = q(meta.get_field(key).column)
        if equal[key] is None:
            conditions.append(f"{column} IS NULL")
        else:
            conditions.append(f"{column} = %s")
            params.append(_prepared(model, key, equal[key], conn))
    since_column = q(meta.get_field(since_field).column)
    conditions.append(f"{since_column} > %s")
    params.append(_prepared(model, since_field, since, conn))
    field = meta.get_field(name)
    sql = (
        f"SELECT {q(field.column)} FROM {q(meta.db_table)} "  # noqa: S608
        f"WHERE {' AND '.join(conditions)} ORDER BY {since_column}"
    )
    expression = field.get_col(meta.db_table)
    converters = conn.ops.get_db_converters(expression) + field.get_db_converters(conn)
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        values = [r[0] for r in cursor.fetchall()]
    for converter in converters:
        values = [converter(v, expression, conn) for v in values]
    return values


@functools.cache
def _insert_sql(model: Any, rows: int, vendor: str) -> str:  # noqa: ARG001 - cached per database kind
    q = connection.ops.quote_name
    fields = _insert_fields(model)
    marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return (
        f"INSERT INTO {q(model._meta.db_table)} ({', '.join(q(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES {', '.join([marks] * rows)} RETURNING {q(model._meta.pk.column)}"
    )


@functools.cache
def _insert_fields(model: Any) -> tuple[Any, ...]:
    return tuple(f for f in model._meta.concrete_fields if not f.primary_key)


def insert_all(objs: list[Any]) -> None:
    """Insert new rows of one model in one statement without the ORM compiler; set their pks.

    For hot paths that write a few rows per request (what bulk_create does, at a fraction of
    its cost): defaults and auto_now_add fields are filled as save() fills them.
    """
    if not objs:
        return
    model = type(objs[0])
    conn = connections[DEFAULT_DB_ALIAS]
    params = []
    for obj in objs:
        params += [f.get_db_prep_save(f.pre_save(obj, True), conn) for f in _insert_fields(model)]
    sql = _insert_sql(model, len(objs), conn.vendor)
    rows = fetch_all(conn, sql, params, prepare=len(objs) == 1)
    for obj, (pk,) in zip(objs, rows, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = conn.alias
