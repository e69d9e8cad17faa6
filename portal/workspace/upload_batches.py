"""A finished upload batch becomes studies in a Celery worker, not in the web request.

A 2 GB CBCT takes seconds to ingest; the page polls the batch's status instead of holding a
web worker (and its timeout) for that long. On a laptop Celery runs eagerly, so the batch is
done by the time the finish request answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.utils import timezone

import audit
from audit.models import Action
from audit.services import client_ip
from portal.access import Scope
from portal.models import Patient, StaffMember, UploadBatch
from portal.workspace import tus

logger = logging.getLogger(__name__)

RETRY_MESSAGE = "Reading the images stopped unexpectedly. Press “Try again”: sent files are kept."


@dataclass(frozen=True)
class Origin:
    """Who finished the batch and from where, carried to the worker for the audit trail.

    audit.record reads a request's user and META; this stands in for the request there.
    """

    user_id: int
    ip: str
    user_agent: str

    @classmethod
    def of(cls, request) -> Origin:
        return cls(
            user_id=request.user.pk,
            ip=client_ip(request) or "",
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        )

    def as_task_args(self) -> dict:
        return {"user_id": self.user_id, "ip": self.ip, "user_agent": self.user_agent}


class _RecordedRequest:
    """The parts of a request that audit.record reads, rebuilt in the worker."""

    def __init__(self, user, origin: Origin) -> None:
        self.user = user
        self.META = {"REMOTE_ADDR": origin.ip, "HTTP_USER_AGENT": origin.user_agent}


def claim(batch: UploadBatch) -> bool:
    """Mark an open batch as being processed; False if another request got there first."""
    return bool(
        UploadBatch.objects.filter(
            pk=batch.pk, state=UploadBatch.State.OPEN, finished_at__isnull=True
        ).update(state=UploadBatch.State.PROCESSING, finished_at=timezone.now(), report=None)
    )


def report_json(report) -> dict:
    """The per-file outcome the page shows: names, statuses and reasons, no patient data."""
    files = [
        {
            "name": f.name,
            "status": str(f.status),
            "reason": getattr(f, "reason", "") or "",
            "kind": str(getattr(f, "kind", "") or ""),
        }
        for f in report.files
    ]
    studies = [
        {"url": f"/studies/{s.code}/", "label": str(s), "modalities": s.modalities}
        for s in report.studies
    ]
    result = {"files": files, "studies": studies}
    if not files:
        result["error"] = "No images, photos or reports were found in these files."
    return result


def run(batch_pk: int, origin: Origin) -> None:
    """Ingest every file of a claimed batch, then shred its staged chunks.

    A redelivered task (the worker died mid-way) runs again: ingest is idempotent on SOP
    Instance UID, so files already stored come back as duplicates. An unexpected failure
    puts the batch back to open with a message, so the person can try again without
    sending the files again.
    """
    from portal.ingest import ingest_files

    batch = UploadBatch.objects.select_related("practice", "patient").filter(pk=batch_pk).first()
    if batch is None or batch.state != UploadBatch.State.PROCESSING:
        return
    user = get_user_model().objects.filter(pk=origin.user_id).first()
    request = _RecordedRequest(user, origin)
    member = StaffMember.objects.filter(user=user, practice=batch.practice).first()
    # Files are filed only under patients the uploader may see (a hygienist's assigned ones).
    visible = Scope(batch.practice, member).patients() if member else Patient.objects.none()
    uploads = list(batch.uploads.all())
    streams = [(u.relative_name, tus.open_upload(u)) for u in uploads]
    try:
        report = ingest_files(
            streams,
            practice=batch.practice,
            user=user,
            patient=batch.patient,
            request=request,
            visible=visible,
        )
    except Exception as exc:
        # The type only: a message could quote file contents or names.
        logger.error("upload batch %s: ingest failed (%s)", batch.code, type(exc).__name__)
        UploadBatch.objects.filter(pk=batch.pk).update(
            state=UploadBatch.State.OPEN, finished_at=None, report={"error": RETRY_MESSAGE}
        )
        return
    finally:
        for _, stream in streams:
            stream.close()
    result = report_json(report)
    now = timezone.now()
    for upload in uploads:
        for chunk in upload.chunks.select_related("blob"):
            blob = chunk.blob
            chunk.delete()
            tus.vault.shred(blob)
            blob.delete()
        upload.ingested_at = now
        upload.save(update_fields=["ingested_at"])
    batch.state = UploadBatch.State.DONE
    batch.report = result
    batch.finished_at = now
    batch.save(update_fields=["state", "report", "finished_at"])
    audit.record(
        Action.UPLOAD,
        request=request,
        user=user,
        practice=batch.practice,
        detail={
            "files": len(uploads),
            "bytes": sum(u.length for u in uploads),
            "studies": len(result["studies"]),
            "rejected": sum(1 for f in result["files"] if f["status"] == "rejected"),
        },
    )
