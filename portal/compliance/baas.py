"""Business associate agreements: tell the practice's admins when one is ending or has ended."""

from __future__ import annotations

from datetime import date

from django.utils import timezone

from portal.compliance.notify import send_to_admins
from portal.models import BusinessAssociateAgreement

TOLD = (BusinessAssociateAgreement.Status.ENDING, BusinessAssociateAgreement.Status.ENDED)


def notify(today: date | None = None) -> int:
    """Email each practice's admins once per change into 'ending' or 'ended'; return emails."""
    today = today or timezone.localdate()
    sent = 0
    for baa in BusinessAssociateAgreement.objects.select_related("practice"):
        status = baa.status_on(today)
        if status == baa.notified_status:
            continue
        if status in TOLD:
            context = {"baa": baa, "status": status, "ended": status == TOLD[1]}
            sent += send_to_admins("baa-status", baa.practice, context)
        baa.notified_status = status
        baa.save(update_fields=["notified_status"])
    return sent
