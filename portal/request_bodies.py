"""A request body must keep arriving, or the request ends with 408 and its connection closes.

gunicorn's threads read request bodies as the bytes come in. Without a bound, a phone that
lost its network halfway through an upload (no FIN, no RST) would hold a web thread for
ever, and a handful of clients trickling bytes would hold all of them. So no wait for the
next bytes of a body lasts more than PORTAL_BODY_STALL_SECONDS, and once
PORTAL_BODY_GRACE_SECONDS have passed the body must have averaged
PORTAL_BODY_MIN_BYTES_PER_SECOND; a slow but moving upload (a patient on a weak mobile link)
is far above that and is never cut.

gunicorn reads a body of known length until it holds what the application asked for (64 KiB
at a time for a form), so the pace is kept where the bytes arrive: each of the socket's
reads for the body waits only as long as the pace allows. A view sees `BodyTooSlow` from its
reads; Django answers it through the portal's 400 handler (portal.errors), as 408, and
gunicorn closes a connection whose body could not be read. What a view left unread (a full
upload link refuses before reading) is read here at the same pace, or the connection closes.
A chunked body (no page of the portal sends one; Django would read it as empty) is refused
with 411. Elsewhere (the development server) each read is checked once it returns.
PORTAL_BODY_STALL_SECONDS=0 waits for ever.

A body silent for PORTAL_BODY_STALLED_AFTER_SECONDS is stalled: each client address may hold
only PORTAL_BODY_STALLS_PER_ADDRESS web threads with stalled bodies at once, and a body that
stalls beyond that share is answered 408 at once. Eight connections that sent their headers
and then nothing held every thread of two web processes for a minute, again and again; a
phone that lost its network holds one thread, as before, and other visitors are served.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest

SLOW_BODY_MESSAGE = "the request body arrived too slowly"
# What is left of a body the application did not read is read here, at the pace, up to this
# much (as much as gunicorn itself would); the connection of a larger rest is closed.
DRAIN_BYTES = 64 * 2**10


class BodyTooSlow(BadRequest):
    """The sender stalled, or sent too slowly to finish in any reasonable time."""


class Pace:
    """How long the next bytes of a body may take, from what arrived since it started."""

    def __init__(
        self, *, stall: float, grace: float, min_rate: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.stall = stall if stall > 0 else float("inf")
        self.grace, self.min_rate, self.clock = grace, min_rate, clock
        self.started = clock()
        self.arrived = 0

    def wait_limit(self) -> float:
        """Seconds the next read may wait; TimeoutError if the body is already too late."""
        elapsed = self.clock() - self.started
        # The body is late once elapsed > grace and arrived < min_rate x elapsed.
        late_at = max(self.grace, self.arrived / self.min_rate) if self.min_rate else float("inf")
        left = min(self.stall, late_at - elapsed)
        if left <= 0:
            raise TimeoutError(SLOW_BODY_MESSAGE)
        return left


class Stalls:
    """How many web threads of this process each client address holds with a stalled body."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    def enter(self, address: str, share: int) -> bool:
        """Count one more for address; False (and nothing counted) if it holds its share."""
        with self._lock:
            held = self._held.get(address, 0)
            if share > 0 and held >= share:
                return False
            self._held[address] = held + 1
            return True

    def leave(self, address: str) -> None:
        with self._lock:
            held = self._held.get(address, 0) - 1
            if held > 0:
                self._held[address] = held
            else:
                self._held.pop(address, None)


_stalls = Stalls()


class _PacedSocket:
    """The connection's socket as gunicorn's body reader sees it: each read waits only as long
    as the pace allows, and a silent one only while its address holds no more than its share
    of stalled bodies."""

    def __init__(self, sock: Any, pace: Pace, address: str = "") -> None:
        self._sock, self._pace, self._address = sock, pace, address
        self._stalled_after = settings.PORTAL_BODY_STALLED_AFTER_SECONDS or float("inf")
        self._share = settings.PORTAL_BODY_STALLS_PER_ADDRESS

    def recv(self, size: int) -> bytes:
        stalled = False
        try:
            while True:
                left = self._pace.wait_limit()
                wait = left if stalled else min(left, self._stalled_after)
                self._sock.settimeout(None if wait == float("inf") else wait)
                try:
                    data = self._sock.recv(size)
                    break
                except TimeoutError:
                    if stalled or wait >= left:
                        raise
                    if not _stalls.enter(self._address, self._share):
                        raise TimeoutError(SLOW_BODY_MESSAGE) from None
                    stalled = True
        finally:
            if stalled:
                _stalls.leave(self._address)
        self._pace.arrived += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class PacedBody:
    """The request body as the application reads it: BodyTooSlow instead of a long wait.

    Under gunicorn the socket's reads keep the pace; elsewhere (a development server) each
    read is checked once it returns.
    """

    def __init__(self, stream: Any, pace: Pace, *, on_socket: bool) -> None:
        self._stream, self._pace, self._on_socket = stream, pace, on_socket
        self.delivered = 0
        self.too_slow = False

    def _checked(self, read: Callable[[], bytes]) -> bytes:
        if self.too_slow:
            raise BodyTooSlow(SLOW_BODY_MESSAGE)
        try:
            data = read()
            if not self._on_socket:
                self._pace.arrived += len(data)
                if data:
                    self._pace.wait_limit()
        except TimeoutError:
            self.too_slow = True
            raise BodyTooSlow(SLOW_BODY_MESSAGE) from None
        self.delivered += len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._checked(lambda: self._stream.read(size))

    def readline(self, size: int | None = -1) -> bytes:
        return self._checked(lambda: self._stream.readline(size))

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return list(self)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


def _socket_reader(stream: Any) -> Any:
    """gunicorn's reader of a body of known length, which reads the connection's socket."""
    unreader = getattr(getattr(stream, "reader", None), "unreader", None)
    return unreader if hasattr(unreader, "sock") else None


@contextmanager
def _paced(reader: Any, pace: Pace, address: str) -> Iterator[None]:
    """Keep gunicorn's socket reads for the body to the pace (nothing to do without one)."""
    if reader is None:
        yield
        return
    plain = reader.sock
    timeout = plain.gettimeout()
    reader.sock = _PacedSocket(plain, pace, address)
    try:
        yield
    finally:
        # The answer is written, and the connection's next request read, as before.
        reader.sock = plain
        plain.settimeout(timeout)


def _close_after(stream: Any) -> None:
    """Have gunicorn close the connection after the answer rather than read the body's rest.

    gunicorn reads what the application left of a body before the next request, in steps it
    cannot bound while bytes keep trickling in; a body it could not read closes instead.
    """
    if hasattr(stream, "failed"):
        stream.failed = True


def _finish(body: PacedBody, stream: Any, length: int) -> None:
    """Read, at the pace, what the application left of a small body; give up on a large one.

    A sender refused before its body was read (a full upload link's 413) should still get
    the answer: closing on unread bytes can reset the connection before it reads it.
    """
    left = length - body.delivered
    if left <= 0 or body.too_slow:
        return  # all read, or gunicorn closes a body whose read failed
    if left > DRAIN_BYTES:
        _close_after(stream)
        return
    try:
        while body.read(65536):
            pass
    except (BodyTooSlow, OSError):
        _close_after(stream)


def _length_required(stream: Any, start_response: Callable) -> Iterable[bytes]:
    _close_after(stream)
    start_response("411 Length Required", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"A request body must say its length (Content-Length).\n"]


def paced_bodies(app: Callable) -> Callable:
    """Wrap a WSGI application so that request bodies must keep arriving (module docstring)."""

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        stream = environ.get("wsgi.input")
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            # No page or script of the portal sends one, and Django would read it as empty
            # while gunicorn read it, at the sender's pace, before the next request.
            return _length_required(stream, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django answers a malformed length itself
        if length <= 0 or stream is None:
            return app(environ, start_response)
        pace = Pace(
            stall=settings.PORTAL_BODY_STALL_SECONDS,
            grace=settings.PORTAL_BODY_GRACE_SECONDS,
            min_rate=settings.PORTAL_BODY_MIN_BYTES_PER_SECOND,
        )
        reader = _socket_reader(stream)
        body = PacedBody(stream, pace, on_socket=reader is not None)
        environ["wsgi.input"] = body
        # The client's address as the trusted proxy tells it (as the throttles read it);
        # imported here: the logging set-up imports this module before the apps are ready.
        from audit.services import client_ip

        address = client_ip(SimpleNamespace(META=environ)) or ""
        with _paced(reader, pace, address):
            response = app(environ, start_response)
            _finish(body, stream, length)
        return response

    return application
