"""The upload page and its batch endpoints; the bytes themselves arrive through portal.tus."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

import audit
from audit.models import Action, Outcome
from portal import tus
from portal.access import fetch_or_404
from portal.decorators import staff_required
from portal.models import UploadBatch


def _patient(request: HttpRequest, code: str | None):
    """Return the patient the upload is for, if one was chosen (scoped, else 404)."""
    if not code:
        return None
    try:
        uuid.UUID(code)
    except ValueError:
        raise Http404 from None
    scope = request.scope
    return fetch_or_404(request, scope, scope.patients(), code=code)


@require_GET
@staff_required
def upload_page(request: HttpRequest) -> HttpResponse:
    """Show the drop zone; files go up in resumable chunks and are ingested per batch."""
    patient = _patient(request, request.GET.get("patient"))
    return render(
        request,
        "portal/upload.html",
        {"patient": patient, "max_file_bytes": settings.PORTAL_MAX_FILE_BYTES},
    )


@require_POST
@staff_required
def create_batch(request: HttpRequest) -> JsonResponse:
    """Open a batch for the files of one drop."""
    patient = _patient(request, request.POST.get("patient"))
    batch = UploadBatch.objects.create(
        practice=request.scope.practice, created_by=request.user, patient=patient
    )
    return JsonResponse({"batch": str(batch.code)}, status=201)


def _report_json(report) -> dict:
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
    return {"files": files, "studies": studies}


@require_POST
@staff_required
def finish_batch(request: HttpRequest, code) -> JsonResponse:
    """Ingest every file of a batch once all their bytes arrived; then shred the staged chunks."""
    batch = UploadBatch.objects.filter(
        code=code, practice=request.scope.practice, created_by=request.user
    ).first()
    if batch is None:
        audit.record(
            Action.ACCESS_DENIED,
            request=request,
            outcome=Outcome.DENIED,
            detail={"model": "uploadbatch", "path_kind": "upload-finish"},
            **request.scope.audit_kwargs(),
        )
        return JsonResponse({"error": "Unknown upload batch."}, status=404)
    if batch.state != UploadBatch.State.OPEN:
        return JsonResponse({"error": "This batch was already processed.", **(batch.report or {})})
    uploads = list(batch.uploads.all())
    waiting = [u for u in uploads if not u.is_complete]
    if waiting:
        return JsonResponse({"error": f"{len(waiting)} file(s) are still arriving."}, status=409)
    if not uploads:
        return JsonResponse({"error": "No files were uploaded."}, status=400)
    try:
        from portal.ingest import ingest_files
    except ImportError:
        return JsonResponse({"error": "Ingest is not available yet on this portal."}, status=503)
    # Claim the batch so a double click or a second tab cannot ingest it twice.
    now = timezone.now()
    claimed = UploadBatch.objects.filter(pk=batch.pk, finished_at__isnull=True).update(
        finished_at=now
    )
    if not claimed:
        return JsonResponse({"error": "This batch is already being processed."}, status=409)
    streams = [(u.relative_name, tus.open_upload(u)) for u in uploads]
    try:
        report = ingest_files(
            streams,
            practice=request.scope.practice,
            user=request.user,
            patient=batch.patient,
            request=request,
        )
    except BaseException:
        UploadBatch.objects.filter(pk=batch.pk).update(finished_at=None)
        raise
    finally:
        for _, stream in streams:
            stream.close()
    result = _report_json(report)
    if not result["files"]:
        result["error"] = "No images, photos or reports were found in these files."
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
        detail={
            "files": len(uploads),
            "bytes": sum(u.length for u in uploads),
            "studies": len(result["studies"]),
            "rejected": sum(1 for f in result["files"] if f["status"] == "rejected"),
        },
        **request.scope.audit_kwargs(),
    )
    return JsonResponse(result)
