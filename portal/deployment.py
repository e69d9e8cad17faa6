"""What production needs from its environment, and refusing to start without it.

Settings collect problems instead of raising: each is one line naming the variable and how to
fix it. Every entry point of a production process (gunicorn through portal.wsgi, asgi, the
Celery worker and beat, manage.py) refuses to start with those lines and no traceback, and
`manage.py check --deploy` reports each as an error (portal.checks).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    check_id: str
    message: str


LOCAL_MAIL = (
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
)


def problems(env: Mapping[str, str], values: Mapping[str, object]) -> list[Problem]:
    """Return what keeps production from starting, given the environment and parsed settings."""
    found: list[Problem] = []

    def need(check_id: str, ok: bool, message: str) -> None:
        if not ok:
            found.append(Problem(check_id, message))

    database = str(values["database_engine"])
    need(
        "portal.E010",
        bool(env.get("DATABASE_URL")) and not database.endswith("sqlite3"),
        "DATABASE_URL must name the PostgreSQL database, e.g. "
        "DATABASE_URL=postgres://portal:secret@db:5432/portal (SQLite is for a laptop)",
    )
    broker = env.get("CELERY_BROKER_URL", "")
    need(
        "portal.E011",
        bool(broker) and not broker.startswith("memory"),
        "CELERY_BROKER_URL must name Redis or RabbitMQ, e.g. CELERY_BROKER_URL=redis://redis:"
        "6379/0 (without it uploads are read inside web requests and retention never runs)",
    )
    hosts = list(values["allowed_hosts"])  # type: ignore[call-overload]
    need(
        "portal.E012",
        bool(hosts) and "*" not in hosts,
        "ALLOWED_HOSTS must name the portal's host, e.g. ALLOWED_HOSTS=portal.example.com "
        "(without it every request answers 400)",
    )
    need(
        "portal.E001",
        str(values["base_url"]).startswith("https://"),
        "PORTAL_BASE_URL must be the portal's https:// address, e.g. "
        "PORTAL_BASE_URL=https://portal.example.com (emailed links and handouts use it)",
    )
    need(
        "portal.E013",
        bool(env.get("AWS_STORAGE_BUCKET_NAME") or env.get("PORTAL_VAULT_DIR")),
        "set AWS_STORAGE_BUCKET_NAME (an S3-compatible bucket) or PORTAL_VAULT_DIR (a mounted "
        "volume) for the encrypted objects",
    )
    backend = str(values["email_backend"])
    need(
        "portal.E002",
        backend not in LOCAL_MAIL,
        "EMAIL_BACKEND keeps messages (with their links) on the server; use SMTP, the default",
    )
    need(
        "portal.E014",
        bool(env.get("EMAIL_HOST"))
        or backend not in ("django.core.mail.backends.smtp.EmailBackend",),
        "EMAIL_HOST must name the mail server, e.g. EMAIL_HOST=smtp.example.com (share links "
        "and sign-in codes are emailed)",
    )
    need("portal.E015", not values["debug"], "DEBUG must be 0 in production")
    return found


def refuse_to_start_if_misconfigured() -> None:
    """Print one line per problem and exit (status 78, EX_CONFIG) when production lacks any."""
    from django.conf import settings

    found = getattr(settings, "PORTAL_CONFIG_PROBLEMS", [])
    if not found:
        return
    for problem in found:
        print(f"portal: cannot start in production: {problem.message}", file=sys.stderr)
    raise SystemExit(78)


# What "the table is not there" looks like: SQLite's words, PostgreSQL's undefined_table.
MISSING_TABLE = ("no such table",)
UNDEFINED_TABLE = "42P01"


def database_problem(exc: BaseException, command: str = "") -> str | None:
    """Return one line for the operator when exc comes from a database down or not set up.

    Down: it cannot be reached (a server not listening, a database or file that does not
    exist). Not set up: a table is missing and migrations are not applied. Any other error (a
    bad query, a migration that fails) returns None and keeps its traceback: that is a bug or
    needs its details, not a hint.
    """
    from django.db import connection
    from django.db.utils import DatabaseError

    if not isinstance(exc, DatabaseError):
        return None
    where = _database_named()
    try:
        connection.close()
        connection.ensure_connection()
    except DatabaseError as again:
        reason = next((line.strip() for line in str(again).splitlines() if line.strip()), "")
        return f"The database could not be reached ({where}): {reason}"
    cause = exc.__cause__
    missing_table = getattr(getattr(cause, "diag", None), "sqlstate", None) == UNDEFINED_TABLE
    missing_table = missing_table or any(words in str(exc) for words in MISSING_TABLE)
    if command == "migrate" or not missing_table:
        return None
    try:
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        return None
    if pending:
        return (
            f"The database is not set up ({where}): {len(pending)} migrations are not applied; "
            f"run `manage.py migrate` first{_elsewhere_hint()}"
        )
    return None


def _elsewhere_hint() -> str:
    """On a laptop, an empty database is most often another data folder's: say how to pick it."""
    import os

    from django.conf import settings

    if not settings.LOCAL or os.environ.get("DATABASE_URL"):
        return ""
    return (
        f", or, if the portal's data is in another folder than {settings.DATA_DIR}, "
        "set PORTAL_DATA_DIR to that folder (as for `manage.py demo`)"
    )


def _database_named() -> str:
    from django.conf import settings
    from django.db import connection

    db = settings.DATABASES["default"]
    if connection.vendor == "sqlite":
        return f"SQLite file {db['NAME']}"
    host, port = db.get("HOST") or "localhost", db.get("PORT") or "default port"
    return f"{connection.display_name} at {host}:{port}, database {db.get('NAME')}"
