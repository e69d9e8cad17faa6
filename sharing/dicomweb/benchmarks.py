"""WADO-RS frame latency through gunicorn: what a referrer's viewer waits for each slice."""

from __future__ import annotations

import http.client
import os
import statistics
import time
from typing import Any
from urllib.parse import urlparse

from portal.models import Instance
from sharing.dicomweb.tokens import create_token
from sharing.services import issue_link

PASSWORD = "bench-horse-battery-77"  # noqa: S105 - a throwaway link in the benchmark database
WARM_REQUESTS = 300


def _get(conn: http.client.HTTPConnection, path: str, token: str) -> float:
    started = time.perf_counter()
    conn.request(
        "GET",
        path,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": 'multipart/related; type="application/octet-stream"',
        },
    )
    response = conn.getresponse()
    body = response.read()
    if response.status != 200 or not body:
        raise RuntimeError(f"WADO-RS frame answered {response.status}")
    return time.perf_counter() - started


def run(ctx: Any) -> None:
    """Print WADO-RS single-frame latency p50 and p95 over keep-alive, cold and warm."""
    study = ctx.study
    share = issue_link(
        study=study, created_by=ctx.staff_user, recipient_kind="patient", password=PASSWORD
    ).share
    _, token = create_token(share)
    instances = list(
        Instance.objects.filter(series__study=study)
        .select_related("series")
        .order_by("instance_number")
    )
    paths = [
        f"/dicomweb/studies/{study.study_uid}/series/{i.series.series_uid}"
        f"/instances/{i.sop_instance_uid}/frames/1"
        for i in instances
    ]
    # Connections kept across requests, as in production (CONN_MAX_AGE 300); local mode's
    # default of 0 would time opening the SQLite file on every request.
    with ctx.serve(workers=1, env={"CONN_MAX_AGE": "300"}) as base_url:
        url = urlparse(base_url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        cold = [_get(conn, path, token) for path in paths]
        warm = [_get(conn, paths[k % len(paths)], token) for k in range(WARM_REQUESTS)]
        conn.close()
    ctx.note(
        f"WADO-RS single frames of the {len(paths)}-slice CBCT through gunicorn, one keep-alive "
        f"connection, {WARM_REQUESTS} warm requests, load average {os.getloadavg()[0]:.1f}"
    )
    for label, values in (("cold (first pass)", cold), ("warm", warm)):
        values = sorted(values)
        p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
        ctx.figure(f"WADO-RS frame {label} p50", statistics.median(values) * 1000, "ms")
        ctx.figure(f"WADO-RS frame {label} p95", p95 * 1000, "ms")
