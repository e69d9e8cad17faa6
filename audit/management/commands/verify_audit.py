"""Verify the access history: every event, its end against the head, the signed checkpoints."""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand

from audit import tasks
from audit.verify import verify


class Command(BaseCommand):
    help = (
        "Check the access history's keyed hash chain, its end against the chain head and "
        "against every signed checkpoint in the object store; exit 1 naming the first problem."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--checkpoint",
            action="store_true",
            help="After a clean verification, write (and email) a signed checkpoint.",
        )

    def handle(self, *args, **options) -> None:
        started = time.perf_counter()
        if options["checkpoint"]:
            report, written = tasks.verify_and_checkpoint()
        else:
            report, written = verify(), ""
        elapsed = time.perf_counter() - started
        if not report.ok:
            self.stderr.write(f"TAMPERED: {report.problem}")
            self.stderr.write(f"events verified before the problem: {report.count}")
            sys.exit(1)
        self.stdout.write(
            f"OK: {report.count} events verified in {elapsed:.1f} s, the chain ends at its head "
            f"(#{report.count}, {report.last_hash[:16]}...), "
            f"{report.checkpoints} signed checkpoint(s) match"
        )
        if written:
            self.stdout.write(f"checkpoint written: {written}")
