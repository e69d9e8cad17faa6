"""DICOM network jobs run by a Celery worker: sending a study onward, filing receipts."""

from __future__ import annotations

from celery import shared_task

from portal.dicomnet import send


@shared_task(acks_late=True)
def send_study(transfer_pk: int) -> None:
    """Send a study to its destination (portal.dicomnet.send.run); safe to run twice."""
    send.run(transfer_pk)


@shared_task(acks_late=True)
def file_receipts() -> int:
    """File instances a receiver acknowledged but did not file before it stopped (beat)."""
    from portal.dicomnet import recovery

    return recovery.recover()
