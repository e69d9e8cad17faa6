"""C-STORE ingest throughput of the receiver, beside Orthanc's C-STORE SCP on the same files.

The benchmark CBCT is sent by dcmtk's storescu (a real CBCT unit's role) over one and over
four associations at once. The receiver's time runs until the last record is committed;
Orthanc's until storescu has its last answer (Orthanc stores before it answers). The CPU
each receiver spent per instance (this process's for the portal, Orthanc's process's for
Orthanc; storescu's own is not counted) tells whether a figure is bound by the machine's
two cores or by waiting. Rounds
alternate portal and Orthanc so that machine noise falls on both; each portal round files
into a fresh practice and each Orthanc round starts a fresh Orthanc, so nothing is a
duplicate.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from portal.bench import orthanc
from portal.dicomnet.receiver import Receiver, freeze_startup_heap
from portal.models import DicomNode, DicomPeer, Instance, Practice

MB = 1_000_000
ROUNDS = 3
CALLING = "BENCHSCU"
# Debian's DCMTK (storescu, and Orthanc's DICOM server) leaves Nagle's algorithm on unless
# this is set; with it on, every instance waits for a delayed ACK (about 20 instances/s).
NO_DELAY = {"TCP_NODELAY": "1"}


def _chunks(files: list[Path], n: int) -> list[list[Path]]:
    return [files[i::n] for i in range(n)]


def _storescu(port: int, called: str, groups: list[list[Path]]) -> float:
    """Send each group over its own association at once; return seconds until all answered."""
    exe = shutil.which("storescu")
    started = time.perf_counter()
    procs = [
        subprocess.Popen(  # noqa: S603 - dcmtk's storescu, our own generated files
            [exe, "-aet", CALLING, "-aec", called, "127.0.0.1", str(port), *map(str, group)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **NO_DELAY},
        )
        for group in groups
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"storescu failed: {err.decode(errors='replace')[-300:]}")
    return time.perf_counter() - started


@dataclass
class Round:
    seconds: float
    cpu_seconds: float  # what the receiving process used during the round


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _process_cpu(pid: int) -> float:
    """User plus system seconds of another process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _portal_round(files: list[Path], associations: int, round_no: int) -> Round:
    practice = Practice.objects.create(
        slug=f"bench-net-{associations}-{round_no}", name="Bench receiving"
    )
    called = f"BENCH{associations}R{round_no}"
    DicomNode.objects.create(practice=practice, ae_title=called)
    DicomPeer.objects.create(
        practice=practice, name="storescu", ae_title=CALLING, address="127.0.0.1"
    )
    receiver = Receiver()
    port = orthanc.free_port()
    receiver.start("127.0.0.1", port)
    try:
        cpu = _own_cpu()
        started = time.perf_counter()
        _storescu(port, called, _chunks(files, associations))
        if not receiver.wait_idle(600):
            raise RuntimeError("the receiver did not finish filing")
        seconds = time.perf_counter() - started
        cpu = _own_cpu() - cpu
    finally:
        receiver.stop()
    filed = Instance.objects.filter(practice=practice).count()
    if filed != len(files):
        raise RuntimeError(f"the receiver filed {filed} of {len(files)} files")
    return Round(seconds, cpu)


def _orthanc_round(files: list[Path], associations: int) -> Round:
    with orthanc.running(modalities={"bench": (CALLING, "127.0.0.1", 104)}, env=NO_DELAY) as o:
        cpu = _process_cpu(o.process.pid)
        seconds = _storescu(o.dicom_port, o.aet, _chunks(files, associations))
        cpu = _process_cpu(o.process.pid) - cpu
        stored = len(o.json("/instances"))
    if stored != len(files):
        raise RuntimeError(f"Orthanc stored {stored} of {len(files)} files")
    return Round(seconds, cpu)


def run(ctx: Any) -> None:
    """Print C-STORE ingest MB/s and instances/s over 1 and 4 associations, beside Orthanc."""
    if shutil.which("storescu") is None:
        ctx.note("C-STORE ingest skipped: dcmtk's storescu is not installed")
        return
    folder = Path(settings.DATA_DIR) / "generated" / "cbct"
    files = sorted(folder.glob("*.dcm"))
    size = sum(f.stat().st_size for f in files)
    with_orthanc = orthanc.binary() is not None
    freeze_startup_heap()  # as manage.py dicom_receiver does
    times: dict[tuple[str, int], list[Round]] = {}
    for round_no in range(ROUNDS):
        for associations in (1, 4):
            times.setdefault(("portal", associations), []).append(
                _portal_round(files, associations, round_no)
            )
            if with_orthanc:
                times.setdefault(("Orthanc", associations), []).append(
                    _orthanc_round(files, associations)
                )
    ctx.note(
        f"C-STORE of the {len(files)}-slice CBCT ({size / MB:.0f} MB) by storescu, "
        f"{ROUNDS} alternating rounds, median of each, load average {os.getloadavg()[0]:.1f}"
        + ("" if with_orthanc else "; Orthanc is not installed, so no comparison")
    )
    for associations in (1, 4):
        noun = "association" if associations == 1 else "associations"
        for who in ("portal", "Orthanc"):
            rounds = times.get((who, associations))
            if not rounds:
                continue
            median = statistics.median(r.seconds for r in rounds)
            cpu = statistics.median(r.cpu_seconds for r in rounds)
            label = f"C-STORE ingest {who}, {associations} {noun}"
            ctx.figure(f"{label} MB/s", size / MB / median, "MB/s")
            ctx.figure(f"{label} instances/s", len(files) / median, "instances/s")
            ctx.figure(f"{label} receiver CPU per instance", cpu / len(files) * 1000, "ms")
        if with_orthanc:
            ratio = statistics.median(
                r.seconds for r in times[("Orthanc", associations)]
            ) / statistics.median(r.seconds for r in times[("portal", associations)])
            ctx.figure(f"C-STORE ingest portal / Orthanc, {associations} {noun}", ratio, "x")
