"""A small SMTP server on a loopback port that keeps each message as a file.

Production refuses mail backends that keep messages on the server, so a portal served in
production mode for a test sends real SMTP here; tests read the files.
"""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path


class _Session(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 sink ready")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
            if verb in ("HELO", "EHLO"):
                self.reply("250 sink")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with .")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)
                self.server.keep(b"".join(lines))  # type: ignore[attr-defined]
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, folder: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Session)
        self.folder = folder
        self._count = 0
        self._lock = threading.Lock()

    def keep(self, message: bytes) -> None:
        with self._lock:
            self._count += 1
            (self.folder / f"{self._count:05d}.eml").write_bytes(message)


@contextlib.contextmanager
def mail_sink(folder: Path) -> Iterator[int]:
    """Accept SMTP on a free loopback port, writing messages into folder; yield the port."""
    folder.mkdir(parents=True, exist_ok=True)
    server = _Server(folder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
