"""Crypto-shred studies past their practice's retention schedule and not on legal hold."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portal.compliance import retention, rules


class Command(BaseCommand):
    help = "List records past their retention schedule for approval; shred approved ones."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="List how many are due.")

    def handle(self, *args, **options) -> None:
        if options["dry_run"]:
            due = rules.due_records(timezone.localdate())
            self.stdout.write(f"{len(due)} records are past their retention schedule")
            return
        report = retention.enforce()
        self.stdout.write(
            f"{report.proposed} records newly due, awaiting approval in the back office "
            f"(unless the practice purges automatically); shredded {report.studies} approved "
            f"records ({report.objects} encrypted objects)"
        )
        if report.failed:
            raise CommandError(
                f"{report.failed} approved purges failed and stay approved for the next run "
                "(the log names each purge and the kind of failure)"
            )
