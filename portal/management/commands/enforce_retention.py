"""Crypto-shred studies past their practice's retention schedule and not on legal hold."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from portal import retention


class Command(BaseCommand):
    help = "Crypto-shred every study past its retention schedule (legal holds are kept)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="List how many are due.")

    def handle(self, *args, **options) -> None:
        if options["dry_run"]:
            due = retention.due_studies()
            self.stdout.write(f"{len(due)} studies are past their retention schedule")
            return
        report = retention.enforce()
        self.stdout.write(f"shredded {report.studies} studies ({report.objects} encrypted objects)")
