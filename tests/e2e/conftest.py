"""End-to-end fixtures: the demo served by gunicorn, driven by Debian's Chromium via Playwright.

The server runs in its own laptop-mode data directory and SQLite database, filled by
`manage.py demo --no-serve --json`, exactly as a newcomer would run it. Where Redis is up
(always under CI), gunicorn queues its background work to a real Celery worker, as in
production; otherwise tasks run inline, as on a laptop.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import http.server
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e import people
from tests.integration.services import free_port, gunicorn

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Playwright's sync API runs an event loop in this thread; the ORM is not used by these tests,
# but pytest-django's fixtures may touch it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _require_chromium() -> None:
    if Path(CHROMIUM).exists() and shutil.which(CHROMIUM):
        return
    message = f"Chromium not found at {CHROMIUM}: install Debian's chromium (CI does)"
    if os.environ.get("CI") or os.environ.get("PORTAL_REQUIRE_E2E"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory) -> Iterator[dict]:
    """Yield the demo's printed facts plus `base_url` of a running gunicorn."""
    _require_chromium()
    data_dir = tmp_path_factory.mktemp("e2e-data")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PORTAL_MODE": "local",
        "PORTAL_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir}/e2e.sqlite3",
        "PORTAL_BASE_URL": base_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Each email a file in the data directory, where journeys read their links.
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(data_dir / "mail"),
        # The product's settings, not the suite's (eager tasks, fast hashing).
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    for name in ("AWS_STORAGE_BUCKET_NAME", "CELERY_BROKER_URL", "REDIS_URL"):
        env.pop(name, None)
    demo = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "demo", "--no-serve", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if demo.returncode:
        pytest.fail(f"manage.py demo failed:\n{demo.stderr[-3000:]}")
    facts = json.loads(demo.stdout.strip().splitlines()[-1])
    worker = _start_worker(env, data_dir)
    try:
        with gunicorn(env, data_dir / "server.log", port=port):
            yield {
                **facts,
                "base_url": base_url,
                "env": env,
                "data_dir": data_dir,
                "server_log": data_dir / "server.log",
                "mail_dir": data_dir / "mail",
            }
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(20)


def _start_worker(env: dict, data_dir: Path) -> subprocess.Popen | None:
    """Point env at Redis and start a Celery worker on it; None where Redis is absent."""
    from tests.integration.services import reachable, start_worker

    broker = os.environ.get("PORTAL_E2E_REDIS_URL", "redis://127.0.0.1:6379/14")
    if not reachable(broker):
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {broker}")
        return None
    import redis

    redis.Redis.from_url(broker).flushdb()
    env.update({"CELERY_BROKER_URL": broker, "CELERY_TASK_ALWAYS_EAGER": "0"})
    worker_log = open(data_dir / "worker.log", "w")  # noqa: SIM115
    return start_worker(env, worker_log)


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def fresh_page(browser, timeout_ms: int, **options):
    """A page in a fresh browser context (no cookies), closed afterwards (page.context is it)."""
    context = browser.new_context(accept_downloads=True, **options)
    try:
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser, tmp_path):
    """A fresh browser context (no cookies) at phone width, with downloads allowed."""
    with fresh_page(browser, 20_000, viewport={"width": 390, "height": 844},
                     device_scale_factor=1) as fresh:  # fmt: skip
        yield fresh


@pytest.fixture
def desktop_page(browser):
    with fresh_page(browser, 20_000, viewport={"width": 1280, "height": 900}) as fresh:
        yield fresh


def totp_now(otpauth_uri: str, at: float | None = None) -> str:
    """Compute the current code for an otpauth:// URI (RFC 6238), as an authenticator app would."""
    query = parse_qs(urlparse(otpauth_uri).query)
    secret = query["secret"][0]
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digits = int(query.get("digits", ["6"])[0])
    period = int(query.get("period", ["30"])[0])
    counter = int((at or time.time()) // period)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF) % 10**digits
    return f"{code:0{digits}d}"


_last_step_used: dict[str, int] = {}


def fresh_totp(otpauth_uri: str) -> str:
    """Return a code the server has not seen yet for this device.

    The server accepts each time step once (a reused code is refused), so a second sign-in
    of the same user in one test run waits for the next step, and a code about to expire is
    not typed.
    """
    period = int(parse_qs(urlparse(otpauth_uri).query).get("period", ["30"])[0])
    while True:
        now = time.time()
        step = int(now // period)
        if step > _last_step_used.get(otpauth_uri, -1) and period - now % period > 3:
            _last_step_used[otpauth_uri] = step
            return totp_now(otpauth_uri, now)
        time.sleep(0.5)


def run_manage(demo_server: dict, *args: str) -> str:
    """Run a management command against the e2e server's database; return its stdout."""
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=demo_server["env"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


@contextlib.contextmanager
def webmail(folder: Path, link: str, text: str) -> Iterator[str]:
    """Serve a page holding one link (id "open") from another site than the portal's.

    The portal runs at 127.0.0.1; this page is opened at localhost, so following the link
    is a cross-site navigation, as from a webmail inbox. Yields the page's address.
    """
    (folder / "inbox.html").write_text(f'<a id="open" href="{link}">{text}</a>')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://localhost:{server.server_address[1]}/inbox.html"
        finally:
            server.shutdown()


@pytest.fixture
def phone(browser):
    """A phone's page (390x844, touch), for the people journeys."""
    with fresh_page(browser, 30_000, viewport=people.PHONE, has_touch=True, is_mobile=True,
                     device_scale_factor=2) as fresh:  # fmt: skip
        yield fresh


@pytest.fixture
def desktop(browser):
    """A desktop page (1440x900), for the people journeys."""
    with fresh_page(browser, 30_000, viewport=people.DESKTOP) as fresh:
        yield fresh
