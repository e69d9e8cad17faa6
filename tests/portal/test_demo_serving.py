"""`manage.py demo` as an IT person runs it with its output sent to a log file or a pipe."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import time

from tests.integration.services import ROOT, free_port


def test_the_login_and_link_are_printed_before_the_server_runs() -> None:
    """Redirected output is block-buffered: without a flush the link shows only at exit."""
    data = tempfile.mkdtemp(prefix="portal-demo-serving-")
    env = {**os.environ, "PORTAL_MODE": "local", "PORTAL_DATA_DIR": data}
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("PYTHONUNBUFFERED", None)  # as on a server, where nothing sets it
    port = free_port()
    demo = subprocess.Popen(  # noqa: S603 - our own command
        [
            sys.executable,
            "manage.py",
            "demo",
            "--cbct-slices",
            "120",
            "--addrport",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        printed = b""
        deadline = time.monotonic() + 240
        while b"Share link" not in printed and time.monotonic() < deadline:
            ready, _, _ = select.select([demo.stdout], [], [], 1)
            if ready:
                chunk = os.read(demo.stdout.fileno(), 65536)
                if not chunk:
                    break
                printed += chunk
        assert demo.poll() is None, "the demo stopped instead of serving"
        assert b"Staff sign-in" in printed, printed.decode(errors="replace")[-2000:]
        assert b"Share link" in printed
    finally:
        demo.terminate()
        demo.wait(30)


def test_a_scan_too_small_for_the_jaw_is_refused_in_one_line() -> None:
    env = {**os.environ, "PORTAL_MODE": "local"}
    env["PORTAL_DATA_DIR"] = tempfile.mkdtemp(prefix="portal-demo-small-")
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "manage.py", "demo", "--no-serve", "--cbct-slices", "12"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "--cbct-slices must be at least 120" in done.stderr
