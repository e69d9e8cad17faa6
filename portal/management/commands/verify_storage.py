"""Decrypt every stored object and check it against its recorded SHA-256; report orphans."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from portal import vault
from portal.models import StoredObject
from portal.vault import housekeeping


class Command(BaseCommand):
    help = (
        "Decrypt every object in the vault and check its SHA-256 (exit 1 if any fails); "
        "list files no row can open, and delete them with --delete-orphans."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument(
            "--delete-orphans", action="store_true", help="Delete the orphaned files listed."
        )
        parser.add_argument(
            "--orphan-age-minutes",
            type=int,
            default=60,
            help="Only files older than this count as orphans (an ingest may still be running).",
        )

    def handle(self, *args, **options) -> None:
        checked = bad = 0
        total_bytes = 0
        for obj in StoredObject.objects.filter(wrapped_key__isnull=False).iterator(chunk_size=500):
            try:
                vault.verify(obj)
            except vault.VaultIntegrityError as exc:
                bad += 1
                self.stderr.write(f"FAILED object {obj.code}: {exc}")
            else:
                total_bytes += obj.plain_size
            checked += 1
        self.stdout.write(
            f"checked {checked} objects ({total_bytes / 2**20:.1f} MiB): "
            f"{checked - bad} ok, {bad} failed"
        )
        found = housekeeping.orphans(timedelta(minutes=options["orphan_age_minutes"]))
        for item in found[:20]:
            self.stdout.write(f"orphaned file {item.name} (written {item.modified:%Y-%m-%d %H:%M})")
        if options["delete_orphans"]:
            self.stdout.write(f"deleted {housekeeping.delete(found)} orphaned files")
        else:
            hint = " (delete them with --delete-orphans)" if found else ""
            self.stdout.write(f"{len(found)} orphaned files{hint}")
        if bad:
            raise CommandError(f"{bad} objects failed verification")
