"""Shared machinery for `manage.py benchmark`: the generated study, timers, a live server."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psutil
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal import vault
from portal.demo import phantom
from portal.ingest import ingest_path
from portal.models import Instance, Practice, Role, StaffMember, StoredObject, Study

MB = 1_000_000


class PeakRSS:
    """Sample a process's resident memory in a thread; `.peak_mb` after the block."""

    def __init__(self, pid: int | None = None, interval: float = 0.005) -> None:
        self.proc = psutil.Process(pid or os.getpid())
        self.interval = interval
        self.start_mb = self.peak_mb = 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.proc.memory_info().rss / 2**20)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.start_mb = self.peak_mb = self.proc.memory_info().rss / 2**20
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.start_mb


def _study_bytes(study: Study) -> int:
    return sum(
        Instance.objects.filter(series__study=study).values_list("blob__plain_size", flat=True)
    )


@dataclass
class BenchContext:
    out: object
    practice: Practice
    staff_user: User
    study: Study | None = None
    big_study: Study | None = None
    server_pid: int | None = None
    figures: list[tuple[str, float, str]] = field(default_factory=list)

    @classmethod
    def create(cls, out) -> BenchContext:
        practice, _ = Practice.objects.get_or_create(
            slug="bench", defaults={"name": "Bench Dental"}
        )
        user, _ = User.objects.get_or_create(username="bench-clinician")
        StaffMember.objects.get_or_create(
            user=user, defaults={"practice": practice, "role": Role.CLINICIAN}
        )
        TOTPDevice.objects.get_or_create(user=user, name="bench", defaults={"confirmed": True})
        return cls(out=out, practice=practice, staff_user=user)

    def figure(self, label: str, value: float, unit: str) -> None:
        """Print one figure on its own line."""
        self.figures.append((label, value, unit))
        shown = f"{value:.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:.2f}"
        self.out.write(f"{label}: {shown} {unit}".rstrip())

    def note(self, text: str) -> None:
        self.out.write(f"# {text}")

    def _generate(self, folder: Path, slices: int, patient_id: str) -> int:
        if folder.exists():
            shutil.rmtree(folder)
        files = phantom.write_cbct(
            folder,
            phantom.PhantomGeometry(slices=slices),
            patient_name="Bench^Patient",
            patient_id=patient_id,
            birth_date=date(1980, 1, 1),
            study_date=date(2026, 1, 1),
            seed=slices,
        )
        return sum(f.stat().st_size for f in files)

    def ingest_cbct(self, folder: Path, slices: int) -> None:
        """Generate the benchmark CBCT in a folder and ingest it; print ingest MB/s."""
        size = self._generate(folder, slices, "BENCH-1")
        self.note(f"generated {slices} slices, {size / MB:.0f} MB")
        started = time.perf_counter()
        report = ingest_path(folder, practice=self.practice)
        elapsed = time.perf_counter() - started
        if report.rejected:
            raise RuntimeError(f"benchmark study had rejected files: {report.lines()[:3]}")
        self.study = report.studies[0]
        self.figure(f"ingest {slices}-slice CBCT from a folder", size / MB / elapsed, "MB/s")

    def vault_throughput(self, repeats: int = 3) -> None:
        """Encrypt (with SHA-256 and CRC-32) and decrypt the whole study through the vault.

        Each is repeated; the best and the median are printed, since other processes on the
        machine only ever slow a run down.
        """
        import io
        import statistics

        blobs = [
            i.blob for i in Instance.objects.filter(series__study=self.study).select_related("blob")
        ]
        total = sum(b.plain_size for b in blobs)
        plain = [vault.read_bytes(b) for b in blobs[:50]]
        rounds = max(1, len(blobs) // len(plain))
        enc_bytes = rounds * sum(len(p) for p in plain)
        encrypt: list[float] = []
        encrypt_serial: list[float] = []
        decrypt: list[float] = []
        pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="bench-seal")
        for _ in range(repeats):
            # As ingest stores a study: objects sealed on every core, rows saved in bulk.
            started = time.perf_counter()
            sources = [io.BytesIO(data) for _ in range(rounds) for data in plain]
            sealed = list(pool.map(vault.seal, sources))
            with transaction.atomic():
                StoredObject.objects.bulk_create(sealed)
            encrypt.append(enc_bytes / MB / (time.perf_counter() - started))
            # One object after another in one thread, each row saved on its own.
            started = time.perf_counter()
            with transaction.atomic():
                stored = [vault.store(io.BytesIO(data)) for _ in range(rounds) for data in plain]
            encrypt_serial.append(enc_bytes / MB / (time.perf_counter() - started))
            with transaction.atomic():
                for obj in [*sealed, *stored]:
                    vault.shred(obj)
                    obj.delete()
            started = time.perf_counter()
            for blob in blobs:
                for _chunk in vault.iter_range(blob):
                    pass
            decrypt.append(total / MB / (time.perf_counter() - started))
        pool.shutdown()
        self.note(f"vault: best and median of {repeats}, load average {os.getloadavg()[0]:.1f}")
        cores = os.cpu_count() or 1
        label = f"vault encrypt (AES-256-GCM + SHA-256 + CRC-32), {cores} threads"
        self.figure(label, max(encrypt), "MB/s")
        self.figure(f"vault encrypt median, {cores} threads", statistics.median(encrypt), "MB/s")
        self.figure("vault encrypt, one thread", max(encrypt_serial), "MB/s")
        self.figure("vault decrypt whole study", max(decrypt), "MB/s")
        self.figure("vault decrypt median", statistics.median(decrypt), "MB/s")

    def big_study_memory(self, folder: Path, gigabytes: float) -> None:
        """Ingest and read back a study of about `gigabytes`; print peak memory of each."""
        slices = max(10, int(gigabytes * 1e9 / (512 * 512 * 2 + 2000)))
        size = self._generate(folder, slices, "BENCH-BIG")
        with PeakRSS() as ingest_mem:
            report = ingest_path(folder, practice=self.practice)
        shutil.rmtree(folder)
        study = self.big_study = report.studies[0]
        blobs = [
            i.blob for i in Instance.objects.filter(series__study=study).select_related("blob")
        ]
        with PeakRSS() as read_mem:
            for blob in blobs:
                for _chunk in vault.iter_range(blob):
                    pass
        self.figure(
            f"peak memory ingesting a {size / 1e9:.2f} GB study", ingest_mem.peak_mb, "MB RSS"
        )
        self.figure(f"peak memory reading a {size / 1e9:.2f} GB study", read_mem.peak_mb, "MB RSS")

    @contextlib.contextmanager
    def serve(self, workers: int = 2, env: dict[str, str] | None = None) -> Iterator[str]:
        """Run gunicorn on a free loopback port against this database; yield its base URL."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "PORTAL_MODE": "local", **(env or {})}
        proc = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "portal.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=str(settings.BASE_DIR),
        )
        self.server_pid = proc.pid
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), 0.2),
                ):
                    break
                if proc.poll() is not None:
                    raise RuntimeError("gunicorn exited during start-up")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(10)
            self.server_pid = None
