"""Real faults for the fault tests: a TCP link that breaks on demand, a PostgreSQL server of
the test's own, and a file system that fills up."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.services import free_port

PG_BIN = Path("/usr/lib/postgresql") / (
    sorted(os.listdir("/usr/lib/postgresql"))[-1] if os.path.isdir("/usr/lib/postgresql") else "-"
) / "bin"  # fmt: skip

# SO_LINGER on, zero seconds: close() resets the connection instead of closing it.
RESET = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")


class BreakableLink:
    """A TCP relay on a loopback port to a real server, which can be broken and mended.

    While broken, open connections are reset and new ones closed at once: a store that went
    away in the middle of an upload. `break_after_puts` breaks it by itself once the client
    has begun that many HTTP PUT requests.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.broken = threading.Event()
        self.break_after_puts: int | None = None
        self.puts = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def breaks(self) -> None:
        self.broken.set()
        with self._lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
                    sock.close()
            self._sockets.clear()

    def mends(self) -> None:
        self.broken.clear()
        self.break_after_puts = None

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.broken.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, outgoing: bool) -> None:
        try:
            while data := src.recv(65536):
                if outgoing and data.startswith(b"PUT "):
                    self.puts += 1
                    if self.break_after_puts is not None and self.puts > self.break_after_puts:
                        self.breaks()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self._server.close()
        self.breaks()


@contextlib.contextmanager
def own_postgres() -> Iterator[tuple[str, callable]]:
    """Run a PostgreSQL server of this test's own (initdb, another port); yield its URL and a
    function that restarts it (stops, waits a moment, starts again)."""
    initdb = PG_BIN / "initdb"
    if not initdb.exists() or not shutil.which("runuser"):
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL's server programs are needed at {PG_BIN}")
        pytest.skip(f"PostgreSQL's server programs are not at {PG_BIN}")
    folder = Path(tempfile.mkdtemp(prefix="portal-pg-"))
    folder.chmod(0o755)
    data = folder / "data"
    shutil.chown(folder, "postgres", "postgres")
    port = free_port()

    def as_postgres(*command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603
            ["runuser", "-u", "postgres", "--", *command],
            capture_output=True, text=True, timeout=120, check=check, preexec_fn=_umask,
        )  # fmt: skip

    as_postgres(str(initdb), "-D", str(data), "-A", "trust", "-U", "postgres")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"

    def start() -> None:
        as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l",
            str(folder / "server.log"), "-w", "start",
        )  # fmt: skip

    def restart(down_seconds: float = 2.0) -> None:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        time.sleep(down_seconds)
        start()

    start()
    try:
        as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "portal")
        yield f"postgres://postgres@127.0.0.1:{port}/portal", restart
    finally:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _umask() -> None:
    os.umask(0o077)


@contextlib.contextmanager
def small_disk(size_kb: int) -> Iterator[Path]:
    """Mount a tmpfs of size_kb as a full-disk stand-in; yield its folder; unmount after."""
    folder = Path(tempfile.mkdtemp(prefix="portal-small-disk-"))
    result = subprocess.run(  # noqa: S603
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700", "tmpfs", str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode:
        shutil.rmtree(folder, ignore_errors=True)
        message = f"cannot mount a small tmpfs here: {result.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)  # noqa: S603,S607
        shutil.rmtree(folder, ignore_errors=True)
