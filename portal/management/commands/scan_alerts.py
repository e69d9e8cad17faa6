"""Raise alerts from the access history written since the last scan (beat runs it each minute)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from portal.compliance import alerts


class Command(BaseCommand):
    help = "Raise alerts (locked links, many downloads or addresses, many patients opened)."

    def handle(self, *args, **options) -> None:
        raised = alerts.scan()
        self.stdout.write(f"{len(raised)} new alert(s)")
        for alert in raised:
            self.stdout.write(f"  {alert.practice.slug}: {alert.get_kind_display()}")
