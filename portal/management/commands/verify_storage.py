"""Decrypt every stored object and check it against its recorded SHA-256."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from portal import vault
from portal.models import StoredObject


class Command(BaseCommand):
    help = "Decrypt every object in the vault and check its SHA-256; exit 1 if any fails."

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
        if bad:
            raise CommandError(f"{bad} objects failed verification")
