"""Email practice admins about BAAs ending or ended, once per change (beat runs it daily)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from portal.compliance import baas


class Command(BaseCommand):
    help = "Email each practice's admins about business associate agreements ending or ended."

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"{baas.notify()} email(s) sent")
