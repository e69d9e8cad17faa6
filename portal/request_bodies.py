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
reads; Django answers it through the portal's 400 handler (portal.errors), as 408. A
connection whose body was not read to its end is closed after the answer: gunicorn would
otherwise read the rest, at the sender's pace, before the next request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest

SLOW_BODY_MESSAGE = "the request body arrived too slowly"


class BodyTooSlow(BadRequest):
    """The sender stalled, or sent too slowly to finish in any reasonable time."""


class Pace:
    """How long the next bytes of a body may take, from what arrived since it started."""

    def __init__(
        self, *, stall: float, grace: float, min_rate: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.stall, self.grace, self.min_rate, self.clock = stall, grace, min_rate, clock
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


class _PacedSocket:
    """The connection's socket as gunicorn's body reader sees it: each read waits only as long
    as the pace allows."""

    def __init__(self, sock: Any, pace: Pace) -> None:
        self._sock, self._pace = sock, pace

    def recv(self, size: int) -> bytes:
        self._sock.settimeout(self._pace.wait_limit())
        data = self._sock.recv(size)
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


def _declared_length(environ: dict) -> int | None:
    """The body's length, 0 for none, None when it is chunked (or its length malformed)."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # Django answers a malformed length itself


def _socket_reader(stream: Any) -> Any:
    """gunicorn's reader of a body of known length, which reads the connection's socket."""
    unreader = getattr(getattr(stream, "reader", None), "unreader", None)
    return unreader if hasattr(unreader, "sock") else None


def paced_bodies(app: Callable) -> Callable:
    """Wrap a WSGI application so that request bodies must keep arriving (module docstring)."""

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        length = _declared_length(environ)
        if length == 0 or "wsgi.input" not in environ:
            return app(environ, start_response)
        pace = Pace(
            stall=settings.PORTAL_BODY_STALL_SECONDS,
            grace=settings.PORTAL_BODY_GRACE_SECONDS,
            min_rate=settings.PORTAL_BODY_MIN_BYTES_PER_SECOND,
        )
        reader = _socket_reader(environ["wsgi.input"])
        body = PacedBody(environ["wsgi.input"], pace, on_socket=reader is not None)
        environ["wsgi.input"] = body
        sock = environ.get("gunicorn.socket")
        if reader is None and sock is not None:
            sock.settimeout(pace.stall)  # a chunked body: at least no endless silence

        def closing_start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            if body.too_slow or (length is not None and body.delivered < length):
                headers = [(k, v) for k, v in headers if k.lower() != "connection"]
                headers.append(("Connection", "close"))
            return start_response(status, headers, exc_info)

        if reader is None:
            return app(environ, closing_start_response)
        plain = reader.sock
        reader.sock = _PacedSocket(plain, pace)
        try:
            return app(environ, closing_start_response)
        finally:
            reader.sock = plain  # the connection's next request starts unpaced

    return application
