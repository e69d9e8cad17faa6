"""Writers in separate processes append to one chain: each remembers the head it last saw,
which goes stale as soon as another process appends; the chain must stay one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test import TransactionTestCase

import audit
from audit.models import AccessEvent, Action, ChainHead
from audit.services import verify_chain

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import django
django.setup()
import audit
for i in range({count}):
    audit.record("search", detail={{"writer": {writer}, "n": i}})
"""


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class SeparateProcessWritersTestCase(TransactionTestCase):
    def test_writers_in_four_processes_and_this_one_keep_one_linear_chain(self) -> None:
        audit.record(Action.SEARCH)  # this process now remembers head #1
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PORTAL_DATA_DIR": str(settings.DATA_DIR),
            "DATABASE_URL": database_url(),
        }
        writers = [
            subprocess.Popen(  # noqa: S603
                [sys.executable, "-c", WRITER.format(count=40, writer=n)], cwd=ROOT, env=env
            )
            for n in range(4)
        ]
        mine = 1
        while any(w.poll() is None for w in writers):
            audit.record(Action.SEARCH)  # while they write, the remembered head goes stale
            mine += 1
        self.assertEqual([w.wait(timeout=120) for w in writers], [0, 0, 0, 0])
        audit.record(Action.SEARCH)
        total = mine + 1 + 4 * 40
        seqs = list(AccessEvent.objects.order_by("seq").values_list("seq", flat=True))
        self.assertEqual(seqs, list(range(1, total + 1)))
        self.assertEqual(ChainHead.objects.get().seq, total)
        self.assertEqual(verify_chain(), (True, total, ""))
