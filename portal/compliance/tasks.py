"""Periodic compliance jobs (Celery beat); each is also a management command."""

from __future__ import annotations

from celery import shared_task

from portal.compliance import alerts, baas, retention


@shared_task(acks_late=True)
def enforce_retention() -> dict:
    """List records newly past their schedule for approval; shred approved ones (daily)."""
    report = retention.enforce()
    if report.failed:
        # Everything else ran; the task shows as failed so that monitoring sees it.
        raise RuntimeError(f"{report.failed} approved purges failed; they run again tomorrow")
    return {"proposed": report.proposed, "shredded": report.studies, "objects": report.objects}


@shared_task(acks_late=True)
def notify_baas() -> int:
    """Email practice admins about BAAs ending or ended, once per change (daily)."""
    return baas.notify()


@shared_task(acks_late=True)
def scan_alerts() -> int:
    """Raise alerts from the access history written since the last scan (every minute)."""
    return len(alerts.scan())
