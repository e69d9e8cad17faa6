"""Legal holds set and released, each recorded in the access history with who and when."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

import audit
from audit.models import Action
from portal.models import LegalHold


def _record(request: HttpRequest | None, hold: LegalHold, phase: str) -> None:
    audit.record(
        Action.LEGAL_HOLD,
        request=request,
        practice=hold.practice,
        patient=hold.patient,
        obj=hold.study,
        detail={"phase": phase, "hold": str(hold.code), "study": bool(hold.study_id)},
    )


def set_hold(hold: LegalHold, *, by, request: HttpRequest | None = None) -> LegalHold:
    """Save a new hold, set by `by`, in the patient's practice."""
    with transaction.atomic():
        hold.set_by = by
        hold.practice = hold.patient.practice
        hold.save()
        _record(request, hold, "set")
    return hold


def release(holds, *, by, request: HttpRequest | None = None) -> int:  # noqa: ANN001
    """Release the holds still in force; return how many."""
    released = 0
    with transaction.atomic():
        for hold in holds.filter(released_at__isnull=True).select_related("patient", "study"):
            hold.released_at, hold.released_by = timezone.now(), by
            hold.save(update_fields=["released_at", "released_by"])
            _record(request, hold, "released")
            released += 1
    return released
