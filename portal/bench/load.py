"""HTTP timing for the benchmark: keep-alive clients, a bounded load generator, ZIP first bytes.

Plain sockets and http.client, so the same client code measures the portal and Orthanc.
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-quantile (0..1) by nearest rank; NaN when there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Client:
    """One keep-alive connection with fixed headers (a cookie), as one browser tab."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = dict(headers or {})
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        return self._conn

    def get(self, path: str) -> tuple[int, bytes, float]:
        """Return status, body and milliseconds; reconnect once if the server closed."""
        for attempt in (0, 1):
            started = time.perf_counter()
            conn = self._connection()
            try:
                conn.request("GET", path, headers=self.headers)
                response = conn.getresponse()
                body = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
                continue
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, body, (time.perf_counter() - started) * 1000
        raise AssertionError("unreachable")

    def timed(self, paths: Sequence[str], content: str = "image/") -> list[float]:
        """GET each path in turn; return milliseconds; raise on a wrong status or type."""
        times = []
        for path in paths:
            status, body, ms = self.get(path)
            if status != 200 or not body:
                raise RuntimeError(f"{path} answered {status}")
            times.append(ms)
        return times

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass(frozen=True)
class LoadResult:
    clients: int
    seconds: float
    requests: int
    errors: int
    p50: float
    p95: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_load(
    base_url: str,
    clients_headers: Sequence[dict[str, str]],
    paths: Sequence[str],
    seconds: float,
    seed: int = 1,
) -> LoadResult:
    """Let each client scroll through paths (from a random start) for `seconds`; count all.

    Bounded: a fixed number of clients, each waiting for its answer before asking again, for
    a fixed time. Anything but a 200 with a body, or a failed connection, is an error.
    """
    rng = random.Random(seed)
    starts = [rng.randrange(len(paths)) for _ in clients_headers]
    barrier = threading.Barrier(len(clients_headers) + 1)
    results: list[tuple[list[float], int]] = [([], 0)] * len(clients_headers)
    deadline = [0.0]

    def work(slot: int, headers: dict[str, str]) -> None:
        client = Client(base_url, headers)
        times: list[float] = []
        errors = 0
        index = starts[slot]
        barrier.wait()
        while time.perf_counter() < deadline[0]:
            try:
                status, body, ms = client.get(paths[index % len(paths)])
                if status == 200 and body:
                    times.append(ms)
                else:
                    errors += 1
            except OSError:
                errors += 1
                client.close()
            index += 1
        client.close()
        results[slot] = (times, errors)

    threads = [
        threading.Thread(target=work, args=(n, h), daemon=True)
        for n, h in enumerate(clients_headers)
    ]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    barrier.wait()
    for thread in threads:
        thread.join(seconds + 120)
    elapsed = time.perf_counter() - started
    latencies = [ms for times, _ in results for ms in times]
    return LoadResult(
        clients=len(clients_headers),
        seconds=elapsed,
        requests=len(latencies),
        errors=sum(e for _, e in results),
        p50=percentile(latencies, 0.5),
        p95=percentile(latencies, 0.95),
    )


@dataclass(frozen=True)
class DownloadTiming:
    headers_ms: float
    first_body_ms: float
    total_s: float
    size: int

    @property
    def mb_per_second(self) -> float:
        return self.size / 1e6 / self.total_s if self.total_s else 0.0


def time_download(base_url: str, path: str, headers: dict[str, str]) -> DownloadTiming:
    """GET path over a raw socket: time to the end of the headers, to the first body byte, all.

    http.client hides when the first body byte arrives; a raw socket shows it.
    """
    parts = urlsplit(base_url)
    lines = [f"GET {path} HTTP/1.1", f"Host: {headers.get('Host', parts.netloc)}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "host"]
    lines += ["Connection: close", "", ""]
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=300) as sock:
        started = time.perf_counter()
        sock.sendall("\r\n".join(lines).encode())
        received = bytearray()
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"{path}: connection closed before the headers")
            received += chunk
        headers_ms = (time.perf_counter() - started) * 1000
        head, _, body = bytes(received).partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status + b" ":
            raise RuntimeError(f"{path} answered {status.decode(errors='replace')}")
        size = len(body)
        first_body_ms = headers_ms if body else 0.0
        buffer = bytearray(1 << 20)
        view = memoryview(buffer)
        while True:
            n = sock.recv_into(view)
            if not n:
                break
            if not size:
                first_body_ms = (time.perf_counter() - started) * 1000
            size += n
        total = time.perf_counter() - started
    chunked = b"transfer-encoding: chunked" in head.lower()
    return DownloadTiming(headers_ms, first_body_ms, total, size if not chunked else size)
