"""Database-backed throttles for recipient verification: per client address and per link.

Each failure from an address doubles the wait before its next attempt (0.1 s up to 25 s). An
attempt that comes sooner is told how many seconds are left and is neither judged nor counted:
on a clinic's shared Wi-Fi the wait may come from someone else's typo, and a right answer is
never called wrong. More than 10 failures in 30 minutes from one address answer 429 until the
oldest ages out, and a link locks after 5 failed verifications until staff unlock it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

import audit
from audit.models import Action, Outcome
from portal.locks import held_to_commit
from portal.rows import fetch_column
from sharing.models import ShareLink, VerificationFailure

WINDOW = timedelta(minutes=30)
ADDRESS_LIMIT = 10
LINK_LIMIT = 5
BASE_DELAY = 0.1
MAX_DELAY = 25.0


@contextmanager
def one_attempt_at_a_time(address: str | None) -> Iterator[None]:
    """Run a verification attempt in a transaction no other attempt from `address` overlaps.

    Parallel guesses from one address (at links of any practice) would otherwise all read
    the same failure count and all have their password checked.
    """
    with held_to_commit(f"share-verify:{address or ''}"):
        yield


def _now() -> datetime:
    return timezone.now()


def delay_after(failures: int) -> float:
    """Return the wait in seconds an address owes after this many recent failures."""
    if failures <= 0:
        return 0.0
    return min(BASE_DELAY * 2 ** (failures - 1), MAX_DELAY)


@dataclass(frozen=True)
class AddressState:
    """What an address may do now: `retry_after` > 0 means 429, `too_soon` means wait.

    `wait` is how many seconds are left before the address may try again.
    """

    failures: int
    retry_after: int
    too_soon: bool
    wait: float = 0.0

    @property
    def wait_seconds(self) -> int:
        """Return the wait rounded up to whole seconds, as a person is told it."""
        return max(1, math.ceil(self.wait)) if self.too_soon else 0


def address_state(address: str | None) -> AddressState:
    """Return the throttle state of a client address from its recent failures."""
    now = _now()
    # Read on every DICOMweb request: without the ORM compiler (see portal.rows).
    recent = fetch_column(
        VerificationFailure, "created_at", "created_at", now - WINDOW, address=address
    )
    n = len(recent)
    if n > ADDRESS_LIMIT:
        # Allowed again once only ADDRESS_LIMIT failures remain inside the window.
        frees_at = recent[n - ADDRESS_LIMIT - 1] + WINDOW
        wait = max(1, math.ceil((frees_at - now).total_seconds()))
        return AddressState(n, wait, False, float(wait))
    left = delay_after(n) - (now - recent[-1]).total_seconds() if recent else 0.0
    return AddressState(n, 0, left > 0, max(0.0, left))


def record_address_failure(address: str | None, share: ShareLink | None = None) -> None:
    """Count a failed or refused attempt against the address only."""
    VerificationFailure.objects.create(address=address, share=share, created_at=_now())


def record_link_failure(share: ShareLink, address: str | None, request=None) -> bool:
    """Count a failed verification against address and link; return True if it locked the link."""
    with transaction.atomic():
        record_address_failure(address, share)
        ShareLink.objects.filter(pk=share.pk).update(failed_attempts=F("failed_attempts") + 1)
        locked = ShareLink.objects.filter(
            pk=share.pk, locked_at__isnull=True, failed_attempts__gte=LINK_LIMIT
        ).update(locked_at=_now())
        share.refresh_from_db(fields=["failed_attempts", "locked_at"])
        if locked:
            audit.record(
                Action.SHARE_LOCK,
                request=request,
                share=share,
                outcome=Outcome.DENIED,
                detail={"failures": share.failed_attempts},
            )
    return bool(locked)


def reset_link(share: ShareLink) -> None:
    """Clear a link's failure count after a successful verification."""
    ShareLink.objects.filter(pk=share.pk).update(failed_attempts=0)
    share.failed_attempts = 0
