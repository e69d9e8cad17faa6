"""A request body that stalls or trickles is cut off (portal.request_bodies), a steady one never.

Time is a fake clock here; tests/integration/test_slow_senders.py sends real slow bodies to
gunicorn.
"""

from __future__ import annotations

import io
import types
from wsgiref.validate import validator

from django.test import RequestFactory, SimpleTestCase, override_settings

from portal.errors import bad_request
from portal.request_bodies import DRAIN_BYTES, BodyTooSlow, Pace, PacedBody, paced_bodies


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Arriving:
    """A body whose chunks arrive `seconds` apart on the clock; TimeoutError after them."""

    def __init__(self, clock: Clock, chunks: list[bytes], seconds: float, stalls: bool = False):
        self.clock, self.chunks, self.seconds, self.stalls = clock, list(chunks), seconds, stalls

    def read(self, size: int | None = -1) -> bytes:
        if not self.chunks:
            if self.stalls:
                raise TimeoutError("timed out")
            return b""
        self.clock.now += self.seconds
        return self.chunks.pop(0)


def _pace(clock: Clock) -> Pace:
    return Pace(stall=30, grace=10, min_rate=1000, clock=clock)


class PaceTestCase(SimpleTestCase):
    def test_within_the_grace_period_any_body_may_wait_up_to_the_stall_limit(self) -> None:
        clock = Clock()
        pace = _pace(clock)
        self.assertEqual(pace.wait_limit(), 10)  # until the grace period ends
        clock.now += 4
        self.assertEqual(pace.wait_limit(), 6)

    def test_a_body_ahead_of_the_pace_may_wait_for_what_it_is_ahead(self) -> None:
        clock = Clock()
        pace = _pace(clock)
        clock.now += 20
        pace.arrived = 25_000  # late at 25 s
        self.assertAlmostEqual(pace.wait_limit(), 5)
        pace.arrived = 100_000  # late at 100 s, but no wait is longer than the stall limit
        self.assertEqual(pace.wait_limit(), 30)

    def test_a_body_behind_the_pace_is_late(self) -> None:
        clock = Clock()
        pace = _pace(clock)
        clock.now += 11
        pace.arrived = 5_000
        with self.assertRaises(TimeoutError):
            pace.wait_limit()


class PacedBodyTestCase(SimpleTestCase):
    def test_a_steady_body_is_read_whole(self) -> None:
        clock = Clock()
        chunks = [b"x" * 2000] * 30  # 2000 bytes a second for half a minute
        body = PacedBody(Arriving(clock, chunks, 1.0), _pace(clock), on_socket=False)
        self.assertEqual(len(b"".join(iter(lambda: body.read(2000), b""))), 60_000)
        self.assertFalse(body.too_slow)

    def test_a_trickling_body_is_cut_once_the_grace_period_is_over(self) -> None:
        clock = Clock()
        chunks = [b"x" * 100] * 30  # 100 bytes a second
        body = PacedBody(Arriving(clock, chunks, 1.0), _pace(clock), on_socket=False)
        for _ in range(9):  # nine seconds in: still within the grace period
            body.read(100)
        with self.assertRaises(BodyTooSlow):  # ten seconds in: 1000 bytes, not 10,000
            body.read(100)
        self.assertTrue(body.too_slow)
        with self.assertRaises(BodyTooSlow):  # and stays cut
            body.read(100)

    def test_a_read_that_timed_out_is_too_slow(self) -> None:
        clock = Clock()
        body = PacedBody(Arriving(clock, [b"x"], 0, stalls=True), _pace(clock), on_socket=True)
        self.assertEqual(body.read(1), b"x")
        with self.assertRaises(BodyTooSlow):
            body.read(1)


def _environ(body: bytes, stream, **extra) -> dict:  # noqa: ANN001
    environ = RequestFactory().post("/", data=body, content_type="text/plain").environ
    environ["wsgi.input"] = stream
    environ.update(extra)
    return environ


def _call(app, environ: dict) -> tuple[str, list, bytes]:  # noqa: ANN001
    seen: list = []
    iterable = app(environ, lambda status, headers, exc_info=None: seen.extend([status, headers]))
    answer = b"".join(iterable)
    getattr(iterable, "close", lambda: None)()
    return seen[0], seen[1], answer


class GunicornBody(io.BytesIO):
    """What gunicorn hands the application: a body whose `failed` closes the connection."""

    failed = False


class Sock:
    """A connected socket as gunicorn's body reader uses it."""

    def __init__(self, data: bytes) -> None:
        self.data, self.timeouts, self.timeout = data, [], None

    def gettimeout(self) -> float | None:
        return self.timeout

    def settimeout(self, value: float | None) -> None:
        self.timeouts.append(value)
        self.timeout = value

    def recv(self, size: int) -> bytes:
        data, self.data = self.data[:size], self.data[size:]
        return data


class SocketBody:
    """gunicorn's Body of a known length: Body.reader.unreader.sock is the connection."""

    def __init__(self, sock: Sock) -> None:
        self.reader = types.SimpleNamespace(unreader=types.SimpleNamespace(sock=sock))
        self.failed = False

    def read(self, size: int | None = -1) -> bytes:
        return self.reader.unreader.sock.recv(size if size and size > 0 else 2**20)

    readline = read


TEXT = [("Content-Type", "text/plain")]


def _reading(environ, start_response):  # noqa: ANN001, ANN202
    environ["wsgi.input"].read()
    start_response("200 OK", TEXT)
    return [b"read"]


def _not_reading(environ, start_response):  # noqa: ANN001, ANN202
    start_response("413 Content Too Large", TEXT)
    return [b"refused"]


@override_settings(
    PORTAL_BODY_STALL_SECONDS=30, PORTAL_BODY_GRACE_SECONDS=10, PORTAL_BODY_MIN_BYTES_PER_SECOND=1
)
class PacedBodiesTestCase(SimpleTestCase):
    def test_it_passes_wsgis_own_checks(self) -> None:
        # No hop-by-hop header (Connection: close made the development server answer 500).
        for app in (_reading, _not_reading):
            with self.subTest(app=app.__name__):
                stream = GunicornBody(b"hello")
                environ = _environ(b"hello", stream)
                status, headers, _ = _call(validator(paced_bodies(app)), environ)
                self.assertEqual(headers, TEXT)

    def test_a_small_rest_left_unread_is_read_so_the_answer_arrives(self) -> None:
        stream = GunicornBody(b"x" * 5000)
        _call(paced_bodies(_not_reading), _environ(b"x" * 5000, stream))
        self.assertEqual(stream.read(), b"")
        self.assertFalse(stream.failed)

    def test_a_large_rest_left_unread_closes_the_connection(self) -> None:
        body = b"x" * (DRAIN_BYTES + 1)
        stream = GunicornBody(body)
        _call(paced_bodies(_not_reading), _environ(body, stream))
        self.assertTrue(stream.failed)
        self.assertEqual(len(stream.read()), DRAIN_BYTES + 1)  # not read

    def test_a_chunked_body_is_refused_and_its_connection_closed(self) -> None:
        stream = GunicornBody(b"5\r\nhello\r\n0\r\n\r\n")
        environ = _environ(b"", stream, HTTP_TRANSFER_ENCODING="chunked")
        status, _, answer = _call(paced_bodies(_reading), environ)
        self.assertEqual(status, "411 Length Required")
        self.assertIn(b"Content-Length", answer)
        self.assertTrue(stream.failed)

    def test_the_sockets_own_timeout_comes_back_after_the_body(self) -> None:
        sock = Sock(b"hello")
        stream = SocketBody(sock)
        status, _, _ = _call(paced_bodies(_reading), _environ(b"hello", stream))
        self.assertEqual(status, "200 OK")
        self.assertIs(stream.reader.unreader.sock, sock)
        self.assertLessEqual(sock.timeouts[0], 10)  # paced while the body was read
        self.assertIsNone(sock.timeout)  # then as gunicorn had it


class SlowBodyPageTestCase(SimpleTestCase):
    def test_the_sender_is_told_to_check_the_connection_and_send_again(self) -> None:
        response = bad_request(RequestFactory().post("/"), BodyTooSlow("slow"))
        self.assertEqual(response.status_code, 408)
        self.assertContains(response, "send it again", status_code=408)
