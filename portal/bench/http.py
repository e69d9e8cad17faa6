"""`manage.py benchmark --http`: the production shape over HTTP, beside Orthanc.

gunicorn started as the image starts it (portal.gunicorn_conf), in production mode, against
the configured PostgreSQL and Redis (a throwaway database and cache prefix, dropped after);
a recipient who verified through the real pages; Orthanc, when installed, loaded with the
same CBCT. The two are measured in alternating rounds on the same machine and the ratios
printed beside the targets.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from portal.bench import orthanc
from portal.bench.load import Client

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
PROXY_HEADERS = {"Host": HOST, "X-Forwarded-Proto": "https"}


# ---------------------------------------------------------------- the parent process


def requirements(environ: dict[str, str]) -> tuple[str, str] | str:
    """Return the configured PostgreSQL and Redis URLs, or why the HTTP benchmark cannot run."""
    database = environ.get("DATABASE_URL", "")
    redis = environ.get("REDIS_URL", "") or environ.get("CELERY_BROKER_URL", "")
    if not database.startswith(("postgres://", "postgresql://")):
        return (
            "benchmark --http measures the production stack: set DATABASE_URL to a PostgreSQL "
            "server (e.g. postgres://postgres@127.0.0.1:5432/portal); skipped"
        )
    if not redis.startswith("redis://"):
        return (
            "benchmark --http needs Redis: set REDIS_URL (e.g. redis://127.0.0.1:6379/1); skipped"
        )
    for url, name, port in ((database, "PostgreSQL", 5432), (redis, "Redis", 6379)):
        parts = urlsplit(url)
        address = (parts.hostname or "localhost", parts.port or port)
        try:
            socket.create_connection(address, 2).close()
        except OSError:
            return (
                f"benchmark --http: {name} is not reachable at {address[0]}:{address[1]}; skipped"
            )
    return database, redis


@contextlib.contextmanager
def throwaway_database(database_url: str) -> Iterator[str]:
    """Create an empty database on the configured server; yield its URL; drop it after."""
    import psycopg

    parts = urlsplit(database_url)
    name = f"portal_bench_{secrets.token_hex(4)}"
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parts._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def child_environment(database_url: str, redis_url: str, data_dir: Path) -> dict[str, str]:
    """Return a complete production environment of throwaway secrets around the two services."""
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    env = {
        **os.environ,
        "PORTAL_MODE": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "PORTAL_KEYS": f"bench:{key}",
        "PORTAL_AUDIT_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PORTAL_AUDIT_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "PORTAL_CACHE_PREFIX": f"bench-{secrets.token_hex(4)}",
        "ALLOWED_HOSTS": f"{HOST},localhost",
        "PORTAL_BASE_URL": f"https://{HOST}",
        "PORTAL_DATA_DIR": str(data_dir),
        "PORTAL_VAULT_DIR": str(data_dir / "vault"),
        "PORTAL_STATIC_ROOT": str(data_dir / "static"),
        "EMAIL_HOST": HOST,
        "DEFAULT_FROM_EMAIL": "bench@example.org",
        "LOG_LEVEL": "WARNING",
        # The set-up runs the preview tasks inline, as a worker would after ingest; gunicorn
        # itself gets the real broker setting.
        "CELERY_TASK_ALWAYS_EAGER": "1",
    }
    env.pop("AWS_STORAGE_BUCKET_NAME", None)
    return env


# ---------------------------------------------------------------- servers


def _free_port() -> int:
    return orthanc.free_port()


class Gunicorn:
    """gunicorn with the image's settings on a free loopback port; restartable for cold runs."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.port = _free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        server_env = {
            **self.env,
            "PORTAL_BIND": f"{HOST}:{self.port}",
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "PORTAL_ACCESS_LOG": "",
        }
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and settings module
                [
                    sys.executable, "-m", "gunicorn", "-c", "python:portal.gunicorn_conf",
                    "portal.wsgi:application",
                ],
                env=server_env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if Client(self.url, PROXY_HEADERS).get("/healthz")[0] == 200:
                    return self.url
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start:\n" + self.log.read_text()[-2000:])
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        """Start afresh: new worker processes, with every in-memory cache empty."""
        self.stop()
        self.start()


# ---------------------------------------------------------------- a verified recipient

_INPUT = re.compile(r"<(?:input|select)\b[^>]*>", re.I)  # the month is a list
_ATTR = re.compile(r'(\w[\w-]*)="([^"]*)"')


def _cookies(headers: list[tuple[str, str]], jar: dict[str, str]) -> None:
    for name, value in headers:
        if name.lower() == "set-cookie":
            pair = value.split(";", 1)[0]
            key, _, val = pair.partition("=")
            jar[key.strip()] = val.strip()


def _cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def verify_recipient(base_url: str, token: str, password: str, birth_date: str) -> dict[str, str]:
    """Open the link and verify as a patient would, through the real pages; return headers."""
    import http.client
    from urllib.parse import urlencode

    parts = urlsplit(base_url)
    jar: dict[str, str] = {}

    def send(method: str, path: str, body: str | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        headers = {**PROXY_HEADERS, "Cookie": _cookie_header(jar)}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"https://{HOST}"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode(errors="replace")
        _cookies(response.getheaders(), jar)
        conn.close()
        return response.status, text

    status, _ = send("GET", f"/s/{token}")
    if status != 303:
        raise RuntimeError(f"opening the share link answered {status}")
    status, page = send("GET", "/s/")
    form: dict[str, str] = {}
    for tag in _INPUT.findall(page):
        attrs = dict(_ATTR.findall(tag))
        if "name" in attrs:
            form[attrs["name"]] = attrs.get("value", "")
    year, month, day = birth_date.split("-")
    answers = {
        "password": password, "birth_date": birth_date,
        "birth_day": str(int(day)), "birth_month": str(int(month)), "birth_year": year,
    }  # fmt: skip
    form.update({k: v for k, v in answers.items() if k in form})
    status, _ = send("POST", "/s/", urlencode(form))
    if status != 303:
        raise RuntimeError(f"verifying the recipient answered {status}")
    return {**PROXY_HEADERS, "Cookie": _cookie_header(jar)}


# ---------------------------------------------------------------- figures


@dataclass
class Figures:
    """Samples per (system, figure) across rounds; printed as medians."""

    samples: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, system: str, name: str, value: float) -> None:
        self.samples.setdefault((system, name), []).append(value)

    def get(self, system: str, name: str) -> float | None:
        values = self.samples.get((system, name))
        return statistics.median(values) if values else None


def print_figures(out, figures: Figures, rows: list[tuple[str, str, str]]) -> None:
    """Print 'name: portal X unit, Orthanc Y unit, ratio Z' lines (ratio > 1: portal better)."""
    for name, unit, better in rows:
        ours, theirs = figures.get("portal", name), figures.get("orthanc", name)
        if ours is None and theirs is None:
            continue
        line = f"http {name}: portal {_fmt(ours)} {unit}"
        if theirs is not None:
            line += f", Orthanc {_fmt(theirs)} {unit}"
            if ours:
                ratio = ours / theirs if better == "higher" else theirs / ours
                line += f", ratio {ratio:.2f}x"
        out.write(line)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}"
