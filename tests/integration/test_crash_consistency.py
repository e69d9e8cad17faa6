"""An ingest killed at any moment leaves every row's object intact and only cleanable orphans.

Each file is written and fsynced before the row that points at it commits, so a process that
dies (SIGKILL, at seeded random moments of a real `manage.py ingest`) can leave files without
rows, never rows without files. verify_storage checks every row and lists the orphans;
--delete-orphans removes them; ingesting again completes every study.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from django.test import SimpleTestCase

from portal.demo import phantom

ROOT = Path(__file__).resolve().parents[2]
KILLS = 6
SLICES = 150
PRACTICE = "from portal.models import Practice; Practice.objects.create(slug='crash', name='C')"


def _manage(data: Path, *args: str, wait: bool = True):  # noqa: ANN202
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAL_", "DATABASE_URL", "DJANGO_", "AWS_", "CELERY_"))
    }
    env.update(PORTAL_MODE="local", PORTAL_DATA_DIR=str(data))
    command = [sys.executable, "manage.py", *args]
    if wait:
        return subprocess.run(  # noqa: S603
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
    return subprocess.Popen(  # noqa: S603
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _vault_files(data: Path) -> int:
    return sum(1 for p in (data / "vault").rglob("*") if p.is_file())


def _study(folder: Path, n: int) -> Path:
    """Write one study of its own (new UIDs), so that each ingest stores new files."""
    phantom.write_cbct(
        folder / f"study{n}",
        phantom.PhantomGeometry(slices=SLICES, rows=128, columns=128, pixel_spacing_mm=0.6),
        patient_name="Crash^Test", patient_id="CRASH-1", birth_date=date(1970, 1, 1),
        study_date=date(2026, 1, 1), seed=n, study_uid=f"1.2.826.0.1.3680043.8.498.55.{n}",
        series_uid=f"1.2.826.0.1.3680043.8.498.55.{n}.1",
    )  # fmt: skip
    return folder / f"study{n}"


class CrashConsistencyTestCase(SimpleTestCase):
    def test_an_ingest_killed_anywhere_leaves_nothing_broken(self) -> None:
        tmp = Path(tempfile.mkdtemp(prefix="portal-crash-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        data = tmp / "data"
        self.assertEqual(_manage(data, "migrate", "-v", "0").returncode, 0)
        self.assertEqual(_manage(data, "shell", "-c", PRACTICE).returncode, 0)
        rng = random.Random(20261206)
        studies, orphans_seen = [], 0
        for n in range(KILLS):
            with self.subTest(kill=n):
                studies.append(_study(tmp, n))
                # Kill once this many new files are written: mid-batch (their rows are saved
                # with the batch) or, past the last slice, while the previews are built.
                target = _vault_files(data) + rng.randint(1, SLICES + 2)
                proc = _manage(data, "ingest", str(studies[-1]), "--practice", "crash", wait=False)
                deadline = time.monotonic() + 120
                while _vault_files(data) < target and proc.poll() is None:
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.001)
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                check = _manage(data, "verify_storage", "--orphan-age-minutes", "0")
                self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
                self.assertIn("0 failed", check.stdout)
                orphans_seen += int(check.stdout.rsplit(" orphaned files", 1)[0].split()[-1])
        self.assertGreater(orphans_seen, 0, "no kill landed between a file and its row")
        for study in studies:
            finished = _manage(data, "ingest", str(study), "--practice", "crash")
            self.assertEqual(finished.returncode, 0, finished.stderr)
        clean = _manage(data, "verify_storage", "--delete-orphans", "--orphan-age-minutes", "0")
        self.assertEqual(clean.returncode, 0, clean.stderr)
        after = _manage(data, "verify_storage", "--orphan-age-minutes", "0")
        self.assertIn("0 orphaned files", after.stdout)
        self.assertIn("0 failed", after.stdout)
        count = "from portal.models import Instance; print(Instance.objects.count())"
        output = _manage(data, "shell", "-c", count).stdout
        self.assertEqual(output.strip().splitlines()[-1], str(KILLS * SLICES))
