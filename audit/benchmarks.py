"""Access history figures for `manage.py benchmark`: writing events and verifying the chain."""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from django.db import connection, connections, transaction
from django.utils import timezone

import audit
from audit.chain import event_mac, head_mac
from audit.models import AccessEvent, Action, ChainHead
from audit.services import hashed_values
from audit.verify import verify

WRITES = 5000
# Threads of one process recording at the same moment (a gunicorn worker runs 4).
CONCURRENT_WRITERS = 8
CHAIN = 1_000_000


def _write_rate(ctx: Any, count: int) -> float:
    """Record events one transaction each, as requests do; return events per second."""
    patient = ctx.study.patient if ctx.study else None
    started = time.perf_counter()
    for i in range(count):
        audit.record(
            Action.VIEW_STUDY,
            user=ctx.staff_user,
            practice=ctx.practice,
            patient=patient,
            obj=ctx.study,
            detail={"series": i % 7, "kind": "axial"},
        )
    return count / (time.perf_counter() - started)


def _concurrent_write_rate(ctx: Any, count: int, writers: int) -> float:
    """Record events from `writers` threads at once, as a web process's threads do."""
    patient = ctx.study.patient if ctx.study else None
    start = threading.Barrier(writers + 1)

    def writer() -> None:
        try:
            start.wait()
            for i in range(count // writers):
                audit.record(
                    Action.VIEW_STUDY,
                    user=ctx.staff_user,
                    practice=ctx.practice,
                    patient=patient,
                    obj=ctx.study,
                    detail={"series": i % 7, "kind": "axial"},
                )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return writers * (count // writers) / (time.perf_counter() - started)


def production_write_rates(ctx: Any) -> dict[int, float]:
    """Return events/s for 1 and 8 writers on the configured (production) database."""
    _write_rate(ctx, 500)  # connections and prepared statements warm
    rates = {1: _write_rate(ctx, WRITES), CONCURRENT_WRITERS: 0.0}
    rates[CONCURRENT_WRITERS] = _concurrent_write_rate(ctx, 2 * WRITES, CONCURRENT_WRITERS)
    for writers, rate in rates.items():
        noun = "thread" if writers == 1 else "threads at once"
        ctx.figure(f"audit record on {connection.vendor}, {writers} {noun}", rate, "events/s")
    return rates


def _extend_chain(ctx: Any, total: int, batch: int = 20_000) -> None:
    """Append chained events in bulk until the history holds `total` (setup, not measured)."""
    head = ChainHead.objects.get(pk=1)
    seq, prev = head.seq, head.last_hash
    at = timezone.now()
    patient_id = ctx.study.patient_id if ctx.study else None
    while seq < total:
        rows = []
        for _ in range(min(batch, total - seq)):
            seq += 1
            event = AccessEvent(
                seq=seq,
                code=uuid.uuid4(),
                created_at=at + timedelta(microseconds=seq),
                action=Action.DOWNLOAD,
                user_id=ctx.staff_user.pk,
                practice_id=ctx.practice.pk,
                patient_id=patient_id,
                object_type="study",
                object_code=str(ctx.study.code) if ctx.study else "",
                ip_address="198.51.100.7",
                user_agent="Mozilla/5.0 (benchmark)",
                detail={"phase": "end", "bytes": seq, "complete": True},
                prev_hash=prev,
            )
            event.hash = prev = event_mac(prev, hashed_values(event))
            rows.append(event)
        with transaction.atomic():
            AccessEvent.objects.bulk_create(rows)
            ChainHead.objects.filter(pk=1).update(seq=seq, last_hash=prev, mac=head_mac(seq, prev))


def run(ctx: Any) -> None:
    """Print audit write and verification rates (the history grows to a million events)."""
    ctx.note(f"audit: {connection.vendor}, load average {os.getloadavg()[0]:.1f}")
    ctx.figure("audit record, one transaction each", _write_rate(ctx, WRITES), "events/s")
    started = time.perf_counter()
    _extend_chain(ctx, CHAIN)
    ctx.note(f"audit: chain of {CHAIN} events built in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    report = verify(checkpoints=False)
    elapsed = time.perf_counter() - started
    if not report.ok or report.count < CHAIN:
        raise RuntimeError(f"audit benchmark: the chain did not verify: {report.problem}")
    ctx.figure(f"audit verify {report.count} events", report.count / elapsed, "events/s")
