"""Viewer figures for `manage.py benchmark`, measured through the real authorised views."""

from __future__ import annotations

import http.client
import os
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY

from viewer import mpr

# Each cold reformat decodes the whole volume (1-2.5 s for the demo CBCT on 2 cores): few samples.
COLD_REFORMATS = 5


def _client(ctx: Any) -> Client:
    """Return a test client signed in as the verified bench clinician."""
    hosts = [h for h in settings.ALLOWED_HOSTS if h not in ("*", "")] or ["localhost"]
    client = Client(HTTP_HOST=hosts[0].lstrip("."))
    user = ctx.staff_user
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = user.totpdevice_set.first().persistent_id
    session.save()
    return client


def _get(client: Client, url: str) -> bytes:
    response = client.get(url, secure=True)
    if response.status_code != 200:
        raise RuntimeError(f"viewer benchmark: {url} answered {response.status_code}")
    return response.content


def _timed(client: Client, urls: list[str]) -> list[float]:
    times = []
    for url in urls:
        started = time.perf_counter()
        _get(client, url)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _share_client(ctx: Any) -> Client | None:
    """Return a client holding a verified share session for the bench study, if sharing can."""
    try:
        from sharing import session as share_session
        from sharing.models import ShareLink
        from sharing.services import issue_link
    except ImportError:
        return None
    share = issue_link(
        study=ctx.study, created_by=ctx.staff_user, recipient_kind=ShareLink.Recipient.PATIENT
    ).share
    hosts = [h for h in settings.ALLOWED_HOSTS if h not in ("*", "")] or ["localhost"]
    client = Client(HTTP_HOST=hosts[0].lstrip("."))
    session = client.session
    now = time.time()
    session[share_session.SESSION_KEY] = str(share.code)
    session[share_session.VERIFIED_KEY] = now
    session[share_session.SEEN_KEY] = now
    session.save()
    return client


def _baseline(client: Client, n: int = 200) -> float:
    """Return p50 of a trivial view through the same middleware, the floor under every slice."""
    _get(client, "/robots.txt")
    return _p(_timed(client, ["/robots.txt"] * n), 0.5)


def run(ctx: Any) -> None:
    """Print first-slice, axial, coronal and sagittal latencies and the JPEG slice size."""
    ctx.note(f"viewer: load average at start {_load()} on {os.cpu_count()} cores")
    series = ctx.study.series.order_by("pk").first()
    client = _client(ctx)
    base = f"/viewer/series/{series.code}"
    _get(client, f"{base}/manifest.json")  # audit the first view outside the timings
    ctx.figure("viewer floor: robots.txt through the middleware p50", _baseline(client), "ms")

    recipient = _share_client(ctx)
    if recipient is not None:
        mpr.clear_caches()
        started = time.perf_counter()
        first = recipient.get(f"{base}/manifest.json", secure=True).json()
        _get(recipient, f"{base}/axial/{first['initial_index']}.jpg")
        ctx.figure("viewer share session: first slice cold (manifest + slice)", _ms(started), "ms")
        urls = [f"{base}/axial/{i}.jpg" for i in range(0, first["slices"], 5)]
        _timed(recipient, urls)
        warm = _timed(recipient, urls * 2)
        ctx.figure("viewer share session: axial warm p50", _p(warm, 0.5), "ms")
        ctx.figure("viewer share session: axial warm p95", _p(warm, 0.95), "ms")

    cold = []
    for _ in range(3):
        mpr.clear_caches()
        started = time.perf_counter()
        manifest = client.get(f"{base}/manifest.json", secure=True).json()
        _get(client, f"{base}/axial/{manifest['initial_index']}.jpg")
        cold.append((time.perf_counter() - started) * 1000)
    ctx.figure("viewer first slice cold (manifest + slice)", statistics.median(cold), "ms")

    count = manifest["slices"]
    window = manifest["window"]
    query = f"?c={window['center']:.1f}&w={window['width']:.1f}&invert=0"
    indexes = list(range(0, count, max(1, count // 100)))
    axial = [f"{base}/axial/{i}.jpg{query}" for i in indexes]
    # Only the manifest's slice has been decoded since the caches were emptied.
    never_shown = [u for i, u in zip(indexes, axial, strict=True) if i != manifest["initial_index"]]
    cold_axial = _timed(client, never_shown)
    warm_axial = _timed(client, axial * 3)
    ctx.figure("viewer axial slice cold p50", _p(cold_axial, 0.5), "ms")
    ctx.figure("viewer axial slice cold p95", _p(cold_axial, 0.95), "ms")
    ctx.figure("viewer axial slice warm p50", _p(warm_axial, 0.5), "ms")
    ctx.figure("viewer axial slice warm p95", _p(warm_axial, 0.95), "ms")
    sizes = [len(_get(client, u)) for u in axial]
    ctx.figure("viewer JPEG axial slice size (median)", statistics.median(sizes), "bytes")

    for plane in ("coronal", "sagittal"):
        n = manifest["planes"][plane]["count"]
        urls = [f"{base}/{plane}/{i}.jpg{query}" for i in range(0, n, max(1, n // 100))]
        cold = []
        for k in range(COLD_REFORMATS):  # the middle cut first, then others spread over the plane
            mpr.clear_caches()
            started = time.perf_counter()
            _get(client, urls[(len(urls) // 2 + k * len(urls) // COLD_REFORMATS) % len(urls)])
            cold.append(_ms(started))
        ctx.figure(f"viewer {plane} cold (decode volume + cut)", cold[0], "ms")
        ctx.figure(f"viewer {plane} cold p50 ({COLD_REFORMATS} samples)", _p(cold, 0.5), "ms")
        ctx.figure(f"viewer {plane} cold p95 ({COLD_REFORMATS} samples)", _p(cold, 0.95), "ms")
        warm = _timed(client, urls * 2)
        ctx.figure(f"viewer {plane} warm p50", _p(warm, 0.5), "ms")
        ctx.figure(f"viewer {plane} warm p95", _p(warm, 0.95), "ms")
    sizes = [len(_get(client, u)) for u in urls]
    ctx.figure("viewer JPEG sagittal size (median)", statistics.median(sizes), "bytes")
    if hasattr(ctx, "serve"):
        mpr.clear_caches()
        _http(ctx, client, base, count)
    ctx.note(f"viewer: load average at end {_load()} (others' work inflates every figure)")


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _http(ctx: Any, client: Client, base: str, count: int) -> None:
    """Time warm axial slices over HTTP through gunicorn (keep-alive), the way a browser asks."""
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    paths = [f"{base}/axial/{i}.jpg" for i in range(0, count, max(1, count // 50))]
    with ctx.serve(workers=1) as url:
        parsed = urlsplit(url)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}", "Host": "127.0.0.1"}

        def fetch(path: str) -> float:
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"viewer benchmark: {path} answered {response.status}")
            return _ms(started)

        fetch("/robots.txt")
        for path in paths:  # the server process starts cold
            fetch(path)
        floor = [fetch("/robots.txt") for _ in range(100)]
        warm = [fetch(p) for p in paths * 4]
        conn.close()
    ctx.figure("viewer HTTP floor: robots.txt p50", _p(floor, 0.5), "ms")
    ctx.figure("viewer HTTP axial warm p50", _p(warm, 0.5), "ms")
    ctx.figure("viewer HTTP axial warm p95", _p(warm, 0.95), "ms")


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
