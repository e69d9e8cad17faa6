"""Download throughput of a whole-share ZIP through the real view, served by gunicorn."""

from __future__ import annotations

import http.client
import os
import re
import threading
import time
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urlparse

import psutil

from sharing.services import issue_link
from sharing.verification import issue_code

MB = 1_000_000
PASSWORD = "bench-horse-battery-77"  # noqa: S105 - a throwaway link in the benchmark database


class _Browser:
    """The few browser habits the share pages need: cookies and one connection."""

    def __init__(self, base_url: str) -> None:
        url = urlparse(base_url)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict | None = None):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        for header in response.msg.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response


class _PeakWorkers:
    """Sample the RSS of the server's worker processes; report the largest growth of one."""

    def __init__(self, server_pid: int) -> None:
        self.workers = psutil.Process(server_pid).children(recursive=True)
        self.start = {p.pid: p.memory_info().rss for p in self.workers}
        self.peak = dict(self.start)
        self.cpu_seconds = 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            for p in self.workers:
                try:
                    self.peak[p.pid] = max(self.peak[p.pid], p.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(0.005)

    def _cpu(self) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in self.workers)

    def __enter__(self) -> _PeakWorkers:
        self._cpu_start = self._cpu()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_seconds = self._cpu() - self._cpu_start

    @property
    def growth_mb(self) -> float:
        return max((self.peak[pid] - self.start[pid]) / 2**20 for pid in self.start)


def _sign_in(base_url: str, token: str, birth_date: str, code: str = "") -> _Browser:
    browser = _Browser(base_url)
    r = browser.request("GET", f"/s/{token}")
    r.read()
    if r.status != 303:
        raise RuntimeError(f"opening the link answered {r.status}")
    r = browser.request("GET", "/s/")
    page = r.read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if csrf is None:
        raise RuntimeError("the verification page has no CSRF token")
    form = {"csrfmiddlewaretoken": csrf[1], "password": PASSWORD, "birth_date": birth_date}
    if code:  # a referrer's link: the emailed code instead of a birth date
        form = {"csrfmiddlewaretoken": csrf[1], "password": PASSWORD, "code": code}
    r = browser.request("POST", "/s/", form)
    r.read()
    if r.status != 303:
        raise RuntimeError(f"verification answered {r.status}")
    return browser


def _download(browser: _Browser, path: str) -> tuple[int, int, float, float]:
    """Return bytes received, Content-Length, seconds in all and seconds to the headers."""
    started = time.perf_counter()
    r = browser.request("GET", path)
    headers_at = time.perf_counter() - started
    if r.status != 200:
        raise RuntimeError(f"download answered {r.status}")
    length = int(r.getheader("Content-Length"))
    received = 0
    buf = bytearray(4 * 2**20)
    view = memoryview(buf)
    while True:
        n = r.readinto(view)
        if not n:
            break
        received += n
    return received, length, time.perf_counter() - started, headers_at


def _measure(ctx, study, label: str, rounds: int, *, deidentified: bool = False) -> None:
    """Download the share of one study `rounds` times; print best and median MB/s, memory.

    deidentified: a link to a de-identified copy, made when the link is issued (timed).
    """
    birth = study.patient.birth_date
    started = time.perf_counter()
    issued = issue_link(
        study=study,
        created_by=ctx.staff_user,
        recipient_kind="referrer" if deidentified else "patient",
        recipient_email="bench-referrer@example.org" if deidentified else "",
        password=PASSWORD,
        deidentified=deidentified,
    )
    if deidentified:
        copy = issued.deidentified
        ctx.note(f"{label}: copy of {copy.included} of {copy.total} files made at issue")
        ctx.figure(f"{label} link issued, copy made (s)", time.perf_counter() - started, "s")
    with ctx.serve() as base_url:
        server = psutil.Process(ctx.server_pid)
        speeds: list[float] = []
        per_cpu = 0.0
        growth = 0.0
        to_headers: list[float] = []
        for _ in range(rounds):
            code = issue_code(issued.share) if deidentified else ""
            browser = _sign_in(base_url, issued.token, birth.isoformat() if birth else "", code)
            with _PeakWorkers(server.pid) as peak:
                received, length, seconds, headers_at = _download(browser, "/s/download/share.zip")
            to_headers.append(headers_at)
            if received != length:
                raise RuntimeError(f"download ended at {received} of {length} bytes")
            speeds.append(received / MB / seconds)
            per_cpu = max(per_cpu, received / MB / max(peak.cpu_seconds, 1e-3))
            growth = max(growth, peak.growth_mb)
            browser.conn.close()
    speeds.sort()
    ctx.note(
        f"{label}: whole-share ZIP of {length / MB:.0f} MB, {rounds} downloads over loopback, "
        f"load average {os.getloadavg()[0]:.1f}, "
        f"median {sorted(to_headers)[len(to_headers) // 2] * 1000:.0f} ms to the response headers"
    )
    ctx.figure(f"{label} download MB/s (best)", speeds[-1], "MB/s")
    ctx.figure(f"{label} download MB/s (median)", speeds[len(speeds) // 2], "MB/s")
    # Wall-clock speed suffers when other processes share the cores; this does not.
    ctx.figure(f"{label} download MB per server CPU-second", per_cpu, "MB/s")
    ctx.figure(f"{label} server peak RSS growth MB", growth, "MB")


def run(ctx) -> None:
    """Print download MB/s and the server worker's peak RSS growth for the share ZIPs."""
    _measure(ctx, ctx.study, "CBCT", 5)
    _measure(ctx, ctx.study, "CBCT de-identified", 3, deidentified=True)
    big = getattr(ctx, "big_study", None)
    if big is not None:
        _measure(ctx, big, "big study", 2)
