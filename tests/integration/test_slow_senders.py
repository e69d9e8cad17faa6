"""A sender whose upload stops arriving, or trickles in, never holds a web thread for long.

The portal is served by gunicorn with one worker thread, so a stuck upload would shut every
other visitor out: a phone that lost its network mid-send (no FIN, no RST) held the thread
for ever. With short limits (two seconds of silence; after two seconds, at least 2000 bytes
a second), the stuck send is answered 408 and closed, the next visitor is served, and
nothing of the send is kept. A slow but steady send is not cut.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from django.test import SimpleTestCase

from tests.integration.served import Served, served_portal
from tests.integration.webclient import WebClient

LIMITS = {
    "PORTAL_BODY_STALL_SECONDS": "2",
    "PORTAL_BODY_GRACE_SECONDS": "2",
    "PORTAL_BODY_MIN_BYTES_PER_SECOND": "2000",
}
REPORT = b"%PDF-1.4\n" + bytes(range(256)) * 80 + b"\n%%EOF\n"  # about 20 kB


@pytest.fixture(scope="module")
def one_thread(tmp_path_factory) -> Iterator[Served]:
    with served_portal(
        tmp_path_factory.mktemp("one-thread"), workers=1, threads=1, settings=LIMITS
    ) as portal:
        yield portal


@pytest.fixture
def portal(request, one_thread: Served) -> None:
    request.cls.served = one_thread


def _reply_of(sock: socket.socket, within: float) -> tuple[bytes, bool]:
    """Read what the server answers until it closes the connection; say if it did in time."""
    sock.settimeout(within)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except TimeoutError:
        return got, False
    return got, True


@pytest.mark.usefixtures("portal")
class SlowSenderTestCase(SimpleTestCase):
    served: Served

    def verified_sender(self, slug: str, address: str) -> tuple[WebClient, dict]:
        data = self.served.setup("upload_link", slug=slug, max_bytes=10 * len(REPORT))
        sender = WebClient(self.served.base_url, address=address)
        sender.open_upload_link(data)
        return sender, data

    def start_send(self, sender: WebClient, **extra: str) -> tuple[socket.socket, bytes]:
        """Open a send of REPORT and write its headers; return the socket and the body."""
        body, content_type = sender.files_form([("report.pdf", REPORT)])
        url = urlparse(self.served.base_url)
        headers = {
            **sender.proxy_headers(),
            "Host": f"{url.hostname}:{url.port}",
            "Origin": f"https://{url.hostname}:{url.port}",
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            **extra,
        }
        sock = socket.create_connection((url.hostname, url.port), timeout=30)
        head = "POST /u/files/ HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(head.encode() + b"\r\n")
        return sock, body

    def assert_cut_off(self, sock: socket.socket, data: dict, started: float) -> None:
        reply, closed = _reply_of(sock, within=20)
        sock.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 408"), reply[:200])
        self.assertIn(b"The upload stopped", reply)
        self.assertTrue(closed, "the connection stayed open after the 408")
        self.assertLess(time.monotonic() - started, 15)
        state = self.served.setup("upload_link_state", code=data["code"])
        self.assertEqual((state["kept"], state["charged"], state["orphans"]), ([], 0, 0))
        log = self.served.log()
        self.assertNotIn("Traceback", log)
        self.assertNotIn(data["path"], log)

    def test_a_send_that_stops_arriving_is_answered_408_and_frees_the_only_thread(self) -> None:
        sender, data = self.verified_sender("stalled", "198.51.100.31")
        sock, body = self.start_send(sender)
        started = time.monotonic()
        sock.sendall(body[: len(body) // 3])  # then the phone loses its network
        # Another visitor, while the only web thread reads the stuck send.
        other = WebClient(self.served.base_url, address="198.51.100.32", timeout=20)
        answered = other.get("/login/")
        self.assertEqual(answered.status, 200)
        self.assertLess(time.monotonic() - started, 15)
        self.assert_cut_off(sock, data, started)

    def test_a_send_trickling_in_is_cut_off_after_the_grace_period(self) -> None:
        sender, data = self.verified_sender("trickle", "198.51.100.33")
        sock, body = self.start_send(sender)
        started = time.monotonic()
        stop = threading.Event()

        def trickle() -> None:  # 40 bytes every 0.2 s: 200 bytes a second, never silent
            for i in range(0, len(body), 40):
                if stop.wait(0.2):
                    return
                try:
                    sock.sendall(body[i : i + 40])
                except OSError:
                    return

        sending = threading.Thread(target=trickle)
        sending.start()
        try:
            self.assert_cut_off(sock, data, started)
        finally:
            stop.set()
            sending.join()

    def test_a_slow_but_steady_send_is_kept(self) -> None:
        sender, data = self.verified_sender("steady", "198.51.100.34")
        sock, body = self.start_send(sender, Connection="close")
        for i in range(0, len(body), 2000):  # about 8000 bytes a second for three seconds
            sock.sendall(body[i : i + 2000])
            time.sleep(0.25)
        reply, _ = _reply_of(sock, within=20)
        sock.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply[:200])
        state = self.served.setup("upload_link_state", code=data["code"])
        self.assertEqual(state["kept"], [len(REPORT)])


def _trickle(sock: socket.socket, pieces: list[bytes], every: float) -> threading.Event:
    """Send pieces one by one, `every` seconds apart, in the background; set the event to stop."""
    stop = threading.Event()

    def run() -> None:
        for piece in pieces:
            if stop.wait(every):
                return
            try:
                sock.sendall(piece)
            except OSError:
                return

    threading.Thread(target=run, daemon=True).start()
    return stop


@pytest.mark.usefixtures("portal")
class TricklingRefusedSendTestCase(SimpleTestCase):
    """Bodies a view never reads: gunicorn read their rest, at the sender's pace, holding the
    thread (a chunked one for as long as it trickled)."""

    served: Served

    def open(self, *headers: str) -> socket.socket:
        url = urlparse(self.served.base_url)
        sock = socket.create_connection((url.hostname, url.port), timeout=30)
        head = ["POST /u/files/ HTTP/1.1", f"Host: {url.hostname}:{url.port}",
                "X-Forwarded-Proto: https", "X-Forwarded-For: 198.51.100.40", *headers]  # fmt: skip
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        return sock

    def assert_the_next_visitor_is_served(self, started: float) -> None:
        other = WebClient(self.served.base_url, address="198.51.100.41", timeout=20)
        self.assertEqual(other.get("/login/").status, 200)
        self.assertLess(time.monotonic() - started, 10)

    def test_a_chunked_body_is_refused_at_once_and_its_connection_closed(self) -> None:
        sock = self.open("Transfer-Encoding: chunked", "Content-Type: text/plain")
        started = time.monotonic()
        stop = _trickle(sock, [b"1\r\na\r\n"] * 100, 0.5)
        try:
            reply, closed = _reply_of(sock, within=10)
            self.assertTrue(reply.startswith(b"HTTP/1.1 411"), reply[:200])
            self.assertTrue(closed, "the connection stayed open after the 411")
            self.assert_the_next_visitor_is_served(started)
        finally:
            stop.set()
            sock.close()

    def test_a_refused_send_trickling_its_body_frees_the_thread(self) -> None:
        # No verified link: refused (404) before the body is read; the rest trickles in.
        sock = self.open("Content-Length: 30000", "Content-Type: multipart/form-data; boundary=x")
        started = time.monotonic()
        stop = _trickle(sock, [b"-" * 10] * 3000, 0.5)
        try:
            reply, closed = _reply_of(sock, within=15)
            self.assertTrue(reply.startswith(b"HTTP/1.1 404"), reply[:200])
            self.assertTrue(closed, "the connection stayed open")
            self.assert_the_next_visitor_is_served(started)
        finally:
            stop.set()
            sock.close()


SHARED_LIMITS = {
    "PORTAL_BODY_STALL_SECONDS": "60",  # as served: a phone may be silent that long
    "PORTAL_BODY_STALLED_AFTER_SECONDS": "1",
    "PORTAL_BODY_STALLS_PER_ADDRESS": "1",
}


@pytest.fixture(scope="module")
def four_threads(tmp_path_factory) -> Iterator[Served]:
    with served_portal(
        tmp_path_factory.mktemp("four-threads"), workers=1, threads=4, settings=SHARED_LIMITS
    ) as portal:
        yield portal


@pytest.fixture
def shared(request, four_threads: Served) -> None:
    request.cls.served = four_threads


@pytest.mark.usefixtures("shared")
class SilentBodiesFromOneAddressTestCase(SimpleTestCase):
    """Eight connections sending headers and then nothing held every web thread for a minute,
    again and again: one address may hold only its share of threads with silent bodies."""

    served: Served

    def silent_sign_in(self, address: str) -> socket.socket:
        url = urlparse(self.served.base_url)
        sock = socket.create_connection((url.hostname, url.port), timeout=30)
        head = [
            "POST /login/ HTTP/1.1",
            f"Host: {url.hostname}:{url.port}",
            "X-Forwarded-Proto: https",
            f"X-Forwarded-For: {address}",
            "Content-Type: application/x-www-form-urlencoded",
            "Content-Length: 60000",
        ]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        return sock

    def test_one_address_holds_only_its_share_of_threads_with_silent_bodies(self) -> None:
        started = time.monotonic()
        socks = [self.silent_sign_in("198.51.100.60") for _ in range(4)]
        try:
            # Whichever stalls first holds the address's one thread (not always the first
            # opened); the others are answered 408 within seconds, not after the minute.
            until = started + 8
            cut = 0
            for sock in socks:
                reply, _ = _reply_of(sock, within=max(0.2, until - time.monotonic()))
                cut += reply.startswith(b"HTTP/1.1 408")
            self.assertEqual(cut, 3)  # all but the address's one
            self.assertLess(time.monotonic() - started, 12)
            other = WebClient(self.served.base_url, address="198.51.100.61", timeout=10)
            self.assertEqual(other.get("/login/").status, 200)
            # Another address's silent body is not cut for the first one's.
            elsewhere = self.silent_sign_in("198.51.100.62")
            reply, _ = _reply_of(elsewhere, within=3)
            self.assertEqual(reply, b"")
            elsewhere.close()
            self.assertNotIn("Traceback", self.served.log())
        finally:
            for sock in socks:
                sock.close()
