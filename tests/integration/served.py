"""The portal served as in production: gunicorn on a throwaway PostgreSQL database.

Tests that must see what an attacker sees over HTTP (parallel requests, real worker
processes, gunicorn's own access log) use `served_portal()`. It needs PostgreSQL: without it
the test is skipped with the reason, and under CI=true it fails. The database is created for
the run and dropped afterwards, so it never touches the suite's own test database.

Production mode behind a TLS proxy: the client sends `X-Forwarded-Proto: https` and its
address in `X-Forwarded-For`, as the proxy would (`tests.integration.webclient`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from tests.integration.mailsink import mail_sink
from tests.integration.services import ROOT, gunicorn, require


def _postgres_url() -> str:
    """Return the server URL to create throwaway databases on (its database name is a prefix)."""
    explicit = os.environ.get("PORTAL_TEST_POSTGRES_URL")
    if explicit:
        return explicit
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith(("postgres://", "postgresql://")):
        return database_url
    return "postgres://postgres@127.0.0.1:5432/portal"


POSTGRES_URL = _postgres_url()


def _with_database(url: str, name: str) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path=f"/{name}"))


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(_with_database(POSTGRES_URL, "postgres"), autocommit=True) as conn:
        conn.execute(sql)


@dataclass
class Served:
    """A running portal: its address, environment, data folder and gunicorn's log.

    With several nodes, `base_urls` holds each gunicorn's address (base_url is the first);
    they share the database, Redis and the object store, as a scaled-out deployment does.
    """

    base_url: str
    env: dict
    data_dir: Path
    log_path: Path
    base_urls: list[str] = field(default_factory=list)

    def setup(self, scenario: str, **options) -> dict:
        """Create a scenario's data in the served database (tests.integration.served_data)."""
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "tests.integration.served_data", scenario, json.dumps(options)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode:
            raise RuntimeError(f"scenario {scenario} failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def manage(self, *args: str) -> str:
        """Run a management command against the served database; return its output."""
        result = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return result.stdout

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def served_portal(
    data_dir: Path,
    *,
    workers: int = 2,
    threads: int = 4,
    nodes: int = 1,
    shared_services: bool = False,
    settings: dict[str, str] | None = None,
) -> Iterator[Served]:
    """Migrate a fresh PostgreSQL database, serve it with gunicorn in production mode.

    settings: environment variables that change the portal's settings for this server.
    shared_services: encrypted objects in an S3-speaking store (moto's server) and the cache
    and sessions in Redis, as the compose file runs them, instead of a local vault folder.
    """
    require(POSTGRES_URL, "PostgreSQL")
    prefix = urlparse(POSTGRES_URL).path.lstrip("/") or "portal"
    name = f"{prefix}_served_{os.getpid()}_{secrets.token_hex(3)}"
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    env = {
        **os.environ,
        "PORTAL_MODE": "production",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": _with_database(POSTGRES_URL, name),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "PORTAL_KEYS": f"k1:{key}",
        "PORTAL_AUDIT_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PORTAL_AUDIT_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PORTAL_DATA_DIR": str(data_dir),
        "ALLOWED_HOSTS": "127.0.0.1",
        "PORTAL_BASE_URL": "https://127.0.0.1",
        "USE_X_FORWARDED_FOR": "1",
        "PORTAL_TRUSTED_PROXY_HOPS": "1",
        # Production mail is SMTP: a sink keeps each message in data_dir/mail for the tests.
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": "0",
        # A real broker as production requires; tasks still run inline, no worker needed.
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/13",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "PORTAL_VAULT_DIR": str(data_dir / "vault"),
        "PORTAL_STATIC_ROOT": str(data_dir / "static"),
        "LOG_LEVEL": "WARNING",
    }
    for variable in ("AWS_STORAGE_BUCKET_NAME", "REDIS_URL", "EMAIL_BACKEND"):
        env.pop(variable, None)
    env.update(settings or {})
    if shared_services:
        from tests.portal.s3server import s3_storage_settings

        bucket = f"served-{secrets.token_hex(4)}"
        options = s3_storage_settings(bucket)["OPTIONS"]
        env.update(
            AWS_STORAGE_BUCKET_NAME=bucket,
            AWS_S3_ENDPOINT_URL=options["endpoint_url"],
            AWS_S3_REGION_NAME="us-east-1",
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            REDIS_URL="redis://127.0.0.1:6379/12",
            PORTAL_CACHE_PREFIX=f"served-{secrets.token_hex(4)}",
        )
        env.pop("PORTAL_VAULT_DIR")
    _admin(f'CREATE DATABASE "{name}"')
    sink = mail_sink(data_dir / "mail")
    env["EMAIL_PORT"] = str(sink.__enter__())
    try:
        for command in (["migrate"], ["collectstatic"]):  # as the image and compose do
            subprocess.run(  # noqa: S603
                [sys.executable, "manage.py", *command, "--no-input", "-v", "0"],
                cwd=ROOT,
                env=env,
                check=True,
                timeout=300,
            )
        log_path = data_dir / "server.log"
        with contextlib.ExitStack() as stack:
            urls = [
                stack.enter_context(
                    gunicorn(
                        env,
                        log_path if n == 0 else data_dir / f"server-{n}.log",
                        workers=workers,
                        threads=threads,
                    )
                )
                for n in range(nodes)
            ]
            yield Served(urls[0], env, data_dir, log_path, urls)
    finally:
        sink.__exit__(None, None, None)
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
