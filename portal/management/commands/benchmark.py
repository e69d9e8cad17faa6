"""Measure the hot paths on a generated 450-slice CBCT and print one figure a line.

In-process (the default): a throwaway data directory and SQLite database. With --http: the
production stack over HTTP (gunicorn, the configured PostgreSQL and Redis, on a throwaway
database) beside Orthanc when it is installed. Real data is never touched.
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

from portal.bench.context import BenchContext, PeakRSS

CHILD_ENV = "PORTAL_BENCHMARK_CHILD"
# (--only key, module with run(ctx)), in the order they run.
BENCHMARKS = (
    ("viewer", "viewer.benchmarks"),
    ("dental", "viewer.dental_benchmarks"),
    ("sharing", "sharing.benchmarks"),
    ("audit", "audit.benchmarks"),
    ("dicomnet", "portal.dicomnet.benchmarks"),
    ("dicomweb", "sharing.dicomweb.benchmarks"),
)


class Command(BaseCommand):
    help = "Benchmark ingest, vault, viewer and downloads on a generated CBCT; print figures."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--slices", type=int, default=450)
        parser.add_argument("--big-gb", type=float, default=1.0, help="Size of the memory study.")
        parser.add_argument(
            "--only",
            default="",
            help="Comma list: portal,viewer,dental,sharing,audit,dicomnet,dicomweb",
        )
        parser.add_argument(
            "--http",
            action="store_true",
            help="Measure gunicorn on PostgreSQL and Redis over HTTP, beside Orthanc.",
        )
        parser.add_argument("--seconds", type=float, default=10, help="Each load run (--http).")
        parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds (--http).")
        parser.add_argument(
            "--clients", default="20,50", help="Concurrent recipients per load run (--http)."
        )

    def handle(self, *args, **options) -> None:
        child = os.environ.get(CHILD_ENV)
        if options["http"]:
            if child == "http":
                self._run_http(options)
            else:
                self._respawn_http()
        elif child == "1":
            self._run(options)
        else:
            self._respawn()

    def _respawn_http(self) -> None:
        """Re-run in production mode on a throwaway database of the configured server."""
        from portal.bench import http

        found = http.requirements(dict(os.environ))
        if isinstance(found, str):
            self.stdout.write(found)
            return
        database_url, redis_url = found
        with (
            http.throwaway_database(database_url) as scratch,
            tempfile.TemporaryDirectory(prefix="portal-bench-http-") as tmp,
        ):
            env = http.child_environment(scratch, redis_url, Path(tmp))
            env[CHILD_ENV] = "http"
            code = subprocess.call([sys.executable, *sys.argv], env=env)  # noqa: S603
        if code:
            raise CommandError(f"benchmark --http failed (exit {code})")

    def _run_http(self, options) -> None:
        from portal.bench import compare

        clients = [int(c) for c in options["clients"].split(",") if c.strip()]
        self.stdout.write(f"cpu cores: {os.cpu_count() or 0}")
        compare.run(
            self.stdout,
            Path(settings.DATA_DIR),
            options["slices"],
            options["seconds"],
            options["rounds"],
            clients,
        )

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
        for app, name in BENCHMARKS:
            if only and app not in only:
                continue
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError:
                continue
            started = time.perf_counter()
            module.run(ctx)
            ctx.note(f"{app} benchmarks took {time.perf_counter() - started:.1f} s")


__all__ = ["Command", "PeakRSS"]
