"""Workspace jobs run by a Celery worker: reading a finished upload batch."""

from __future__ import annotations

from celery import shared_task

from portal.workspace import upload_batches


@shared_task(acks_late=True)
def ingest_upload_batch(batch_pk: int, origin: dict) -> None:
    """Turn a finished upload batch into studies (see portal.workspace.upload_batches)."""
    upload_batches.run(batch_pk, upload_batches.Origin(**origin))
