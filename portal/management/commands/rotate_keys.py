"""Re-wrap every data key under the current key-encryption key; data is not re-encrypted."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

import audit
from audit.models import Action, Outcome
from portal import vault
from portal.models import StoredObject
from portal.workspace import otp_keys


class Command(BaseCommand):
    help = (
        "Re-wrap every object's data key and authenticator seed under the current key (the "
        "first of PORTAL_KEYS). "
        "Afterwards older keys can be removed from PORTAL_KEYS."
    )

    def handle(self, *args, **options) -> None:
        current = settings.PORTAL_CURRENT_KEY_ID
        pending = StoredObject.objects.filter(wrapped_key__isnull=False).exclude(key_id=current)
        changed = failed = 0
        for obj in pending.iterator(chunk_size=500):
            try:
                changed += vault.rewrap(obj)
            except vault.VaultIntegrityError as exc:
                failed += 1
                self.stderr.write(f"cannot re-wrap object {obj.code}: {exc}")
        seeds = otp_keys.reseal_all()
        audit.record(
            Action.KEY_ROTATION,
            outcome=Outcome.OK if not failed else Outcome.FAILED,
            detail={"key_id": current, "rewrapped": changed, "failed": failed, "seeds": seeds},
        )
        self.stdout.write(
            f"re-wrapped {changed} data keys under {current}; {failed} failed; "
            f"re-sealed {seeds} authenticator seeds"
        )
        if failed:
            raise CommandError(f"{failed} objects could not be re-wrapped")
