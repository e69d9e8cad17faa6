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
    """Release the holds still in force; return how many.

    Every hold's row is locked and updated before the first event is recorded: the audit
    head is the last lock taken, and two admins releasing at once release each hold once.
    """
    with transaction.atomic():
        pks = list(
            holds.select_for_update(of=("self",))
            .filter(released_at__isnull=True)
            .values_list("pk", flat=True)
        )
        LegalHold.objects.filter(pk__in=pks).update(released_at=timezone.now(), released_by=by)
        for hold in LegalHold.objects.filter(pk__in=pks).select_related("patient", "study"):
            _record(request, hold, "released")
    return len(pks)
