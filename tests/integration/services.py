"""Reach the real services the integration tests need, or skip (and fail under CI)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def require(url: str, what: str) -> None:
    """Skip on a laptop without the service; under CI a missing service is a failure."""
    if reachable(url):
        return
    message = f"{what} is not reachable at {url}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message + " (CI runs this test)")


def start_worker(env: dict, log) -> subprocess.Popen:
    """Start a real Celery worker of the portal with env, writing its log to log."""
    return subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(
    env: dict, log_path: Path, *, port: int | None = None, workers: int = 2, threads: int = 4
) -> Iterator[str]:
    """Serve portal.wsgi with gunicorn as production does; yield its base URL, then stop it.

    Request lines go to log_path (gunicorn's access log), so tests can read what it logged.
    """
    port = port or free_port()
    log = open(log_path, "w")  # noqa: SIM115
    server = subprocess.Popen(  # noqa: S603
        [
            sys.executable, "-m", "gunicorn", "portal.wsgi:application",
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
            "--timeout", "120",
            "--access-logfile", "-",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("gunicorn did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(15)
        log.close()
