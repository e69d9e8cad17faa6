"""A request body that stalls or trickles is cut off (portal.request_bodies), a steady one never.

Time is a fake clock here; tests/integration/test_slow_senders.py sends real slow bodies to
gunicorn.
"""

from __future__ import annotations

import io

from django.test import RequestFactory, SimpleTestCase, override_settings

from portal.errors import bad_request
from portal.request_bodies import BodyTooSlow, Pace, PacedBody, paced_bodies


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


def _call(app, body: bytes, stream) -> tuple[str, list]:  # noqa: ANN001
    environ = RequestFactory().post("/", data=body, content_type="text/plain").environ
    environ["wsgi.input"] = stream
    seen: list = []
    b"".join(app(environ, lambda status, headers, exc_info=None: seen.extend([status, headers])))
    return seen[0], seen[1]


def _reading(status: str = "200 OK"):  # noqa: ANN202
    def app(environ, start_response):  # noqa: ANN001, ANN202
        try:
            environ["wsgi.input"].read()
        except BodyTooSlow:
            status_line = "408 Request Timeout"
        else:
            status_line = status
        start_response(status_line, [("Connection", "keep-alive")])
        return [b""]

    return app


def _not_reading(environ, start_response):  # noqa: ANN001, ANN202
    start_response("413 Content Too Large", [])
    return [b""]


@override_settings(
    PORTAL_BODY_STALL_SECONDS=30, PORTAL_BODY_GRACE_SECONDS=10, PORTAL_BODY_MIN_BYTES_PER_SECOND=1
)
class PacedBodiesTestCase(SimpleTestCase):
    def test_a_body_read_whole_keeps_the_connection(self) -> None:
        status, headers = _call(paced_bodies(_reading()), b"hello", io.BytesIO(b"hello"))
        self.assertEqual((status, headers), ("200 OK", [("Connection", "keep-alive")]))

    def test_a_body_too_slow_closes_the_connection(self) -> None:
        clock = Clock()
        stream = Arriving(clock, [], 0, stalls=True)
        status, headers = _call(paced_bodies(_reading()), b"hello", stream)
        self.assertEqual(status, "408 Request Timeout")
        self.assertEqual(headers, [("Connection", "close")])

    def test_a_body_left_unread_closes_the_connection(self) -> None:
        # Else the server would read the rest, at the sender's pace, before the next request.
        status, headers = _call(paced_bodies(_not_reading), b"hello", io.BytesIO(b"hello"))
        self.assertEqual(headers, [("Connection", "close")])


class SlowBodyPageTestCase(SimpleTestCase):
    def test_the_sender_is_told_to_check_the_connection_and_send_again(self) -> None:
        response = bad_request(RequestFactory().post("/"), BodyTooSlow("slow"))
        self.assertEqual(response.status_code, 408)
        self.assertContains(response, "send it again", status_code=408)
