"""Measure the hot paths on a generated 450-slice CBCT and print one figure a line.

Runs in a throwaway data directory and SQLite database, so the real data is never touched.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from portal.benchmarking import BenchContext, PeakRSS

CHILD_ENV = "PORTAL_BENCHMARK_CHILD"


class Command(BaseCommand):
    help = "Benchmark ingest, vault, viewer and downloads on a generated CBCT; print figures."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--slices", type=int, default=450)
        parser.add_argument("--big-gb", type=float, default=1.0, help="Size of the memory study.")
        parser.add_argument("--only", default="", help="Comma list of apps: portal,viewer,sharing")

    def handle(self, *args, **options) -> None:
        if os.environ.get(CHILD_ENV) != "1":
            self._respawn()
            return
        self._run(options)

    def _respawn(self) -> None:
        """Re-run in a fresh data directory so benchmark data never mixes with real data."""
        with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
            env = {
                **os.environ,
                CHILD_ENV: "1",
                "PORTAL_MODE": "local",
                "PORTAL_DATA_DIR": tmp,
                "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            }
            env.pop("AWS_STORAGE_BUCKET_NAME", None)
            # Previews are a worker's job in production; keep them out of the ingest timing.
            env["CELERY_BROKER_URL"] = "memory://"
            env["CELERY_TASK_ALWAYS_EAGER"] = "0"
            code = subprocess.call([sys.executable, *sys.argv], env=env)  # noqa: S603
        if code:
            raise CommandError(f"benchmark failed (exit {code})")

    def _run(self, options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        ctx = BenchContext.create(self.stdout)
        only = {a for a in options["only"].split(",") if a}
        tmp = Path(settings.DATA_DIR) / "generated"
        ctx.figure("cpu cores", os.cpu_count() or 0, "")
        ctx.ingest_cbct(tmp / "cbct", options["slices"])
        if not only or "portal" in only:
            ctx.vault_throughput()
            ctx.big_study_memory(tmp / "big", options["big_gb"])
        for app in ("viewer", "sharing"):
            if only and app not in only:
                continue
            try:
                module = importlib.import_module(f"{app}.benchmarks")
            except ModuleNotFoundError:
                continue
            started = time.perf_counter()
            module.run(ctx)
            ctx.note(f"{app} benchmarks took {time.perf_counter() - started:.1f} s")


__all__ = ["Command", "PeakRSS"]
