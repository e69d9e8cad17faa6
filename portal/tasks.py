"""Periodic jobs of the practice domain (Celery beat); each is also a management command."""

from __future__ import annotations

from celery import shared_task

from portal import retention


@shared_task(acks_late=True)
def enforce_retention() -> dict:
    """Crypto-shred studies past their retention schedule (daily)."""
    report = retention.enforce()
    return {"studies": report.studies, "objects": report.objects}


@shared_task(acks_late=True)
def ingest_upload_batch(batch_pk: int, origin: dict) -> None:
    """Turn a finished upload batch into studies (see portal.upload_batches)."""
    from portal import upload_batches

    upload_batches.run(batch_pk, upload_batches.Origin(**origin))
