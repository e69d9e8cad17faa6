"""Files waiting for a patient: staff choose one, and the file becomes records like any other."""

from __future__ import annotations

from django.db import transaction

from portal import vault
from portal.ingest.errors import NeedMore, Rejected
from portal.ingest.pipeline import Outcome
from portal.ingest.records import build
from portal.ingest.report import STORED, FileReport
from portal.ingest.sniff import DICOM, HEAD_BYTES, PhotoInfo, parse_dicom
from portal.models import Patient, PendingFile

MAX_HEAD = 16 * 2**20


def _header(pending: PendingFile):  # noqa: ANN202 - DicomHeader
    size = pending.blob.plain_size
    length = min(HEAD_BYTES, size)
    while True:
        head = vault.read_bytes(pending.blob, 0, length)
        try:
            return parse_dicom(head, at_eof=length >= size)
        except NeedMore:
            if length >= min(size, MAX_HEAD):
                raise Rejected("broken DICOM header") from None
            length = min(length * 2, size)


def resolve(pending: PendingFile, patient: Patient, *, user=None, request=None) -> FileReport:
    """Attach a waiting file to the chosen patient; on success the file leaves the queue."""
    if patient.practice_id != pending.practice_id:
        raise ValueError("patient of another practice")
    out = Outcome(index=0, name=pending.original_name, status="ok", kind=pending.kind)
    out.blob = pending.blob
    out.content_type = pending.content_type
    if pending.kind == DICOM:
        try:
            out.header = _header(pending)
        except Rejected as exc:
            return FileReport(pending.original_name, "rejected", str(exc), pending.kind)
    elif pending.kind == PendingFile.Kind.PHOTO:
        out.photo = PhotoInfo(pending.content_type, pending.width or 0, pending.height or 0)
    with transaction.atomic():
        locked = PendingFile.objects.select_for_update(of=("self",)).filter(pk=pending.pk)
        if not locked.exists():
            return FileReport(pending.original_name, "rejected", "already attached", pending.kind)
        plan = build([out], pending.practice, patient, request, user)
        status, reason = plan.status.get(0, ("rejected", "not attached"))
        if status == STORED:
            locked.delete()
    return FileReport(pending.original_name, status, reason, pending.kind)
