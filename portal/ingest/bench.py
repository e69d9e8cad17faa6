"""Measure ingest speed and memory on a folder, for `manage.py benchmark`."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

MB = 1_000_000


def benchmark_ingest(folder: Path, practice) -> dict[str, Any]:  # noqa: ANN001
    """Ingest folder; return MB/s (10**6), seconds, CPU seconds, peak RSS (MiB), the report."""
    import psutil

    from portal.ingest import ingest_path

    folder = Path(folder)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    proc = psutil.Process(os.getpid())
    peak = [proc.memory_info().rss]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu = proc.cpu_times()
    started = time.perf_counter()
    try:
        report = ingest_path(folder, practice=practice)
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        used = proc.cpu_times()
    return {
        "mb_s": size / MB / elapsed,
        "seconds": elapsed,
        "megabytes": size / MB,
        "files": len(report.files),
        "peak_rss_mb": peak[0] / 2**20,
        "cpu_seconds": (used.user + used.system) - (cpu.user + cpu.system),
        "report": report,
    }
