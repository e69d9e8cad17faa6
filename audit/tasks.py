"""The daily check of the access history (Celery beat); `manage.py verify_audit` does the same."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail

from audit import checkpoints
from audit.verify import Report, verify

log = logging.getLogger(__name__)


def verify_and_checkpoint() -> tuple[Report, str]:
    """Verify the chain; if sound, write (and email) a signed checkpoint of it."""
    report = verify()
    if not report.ok:
        log.error("access history verification failed: %s", report.problem)
        if settings.PORTAL_AUDIT_CHECKPOINT_EMAILS:
            send_mail(
                "Access history verification FAILED",
                f"The daily verification of the access history failed:\n\n{report.problem}\n\n"
                "Run `manage.py verify_audit` and keep the database and object store as they "
                "are for the investigation.",
                settings.DEFAULT_FROM_EMAIL,
                list(settings.PORTAL_AUDIT_CHECKPOINT_EMAILS),
            )
        return report, ""
    mark = checkpoints.make(report.count, report.last_hash)
    kept = checkpoints.write(mark)
    checkpoints.email(mark)
    return report, f"{mark.name} ({kept})"


@shared_task(name="audit.tasks.verify_and_checkpoint", acks_late=True)
def verify_and_checkpoint_task() -> dict:
    """Verify the access history and write a signed checkpoint (daily)."""
    report, written = verify_and_checkpoint()
    return {"ok": report.ok, "events": report.count, "checkpoint": written}
