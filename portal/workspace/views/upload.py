"""The upload page and its batch endpoints; the bytes themselves arrive through workspace.tus."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

import audit
from audit.models import Action, Outcome
from portal.access import fetch_or_404
from portal.models import UploadBatch
from portal.workspace import upload_batches
from portal.workspace.decorators import staff_required
from portal.workspace.tasks import ingest_upload_batch


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


def _own_batch(request: HttpRequest, code, path_kind: str) -> UploadBatch | None:
    """Return the caller's own batch in their practice; audit and return None otherwise."""
    batch = UploadBatch.objects.filter(
        code=code, practice=request.scope.practice, created_by=request.user
    ).first()
    if batch is None:
        audit.record(
            Action.ACCESS_DENIED,
            request=request,
            outcome=Outcome.DENIED,
            detail={"model": "uploadbatch", "path_kind": path_kind},
            **request.scope.audit_kwargs(),
        )
    return batch


def _status_json(batch: UploadBatch) -> JsonResponse:
    """The batch's state and, once read, its per-file report; 202 while still processing."""
    body = {"state": batch.state, **(batch.report or {})}
    if batch.state == UploadBatch.State.PROCESSING:
        body["status_url"] = reverse("portal:upload-status", args=[batch.code])
        return JsonResponse(body, status=202)
    return JsonResponse(body)


@require_POST
@staff_required
def finish_batch(request: HttpRequest, code) -> JsonResponse:
    """Hand a batch to a worker once every byte of every file arrived; the page then polls."""
    batch = _own_batch(request, code, "upload-finish")
    if batch is None:
        return JsonResponse({"error": "Unknown upload batch."}, status=404)
    if batch.state == UploadBatch.State.DONE:
        return JsonResponse({"error": "This batch was already processed.", **(batch.report or {})})
    uploads = list(batch.uploads.all())
    waiting = [u for u in uploads if not u.is_complete]
    if waiting:
        return JsonResponse({"error": f"{len(waiting)} file(s) are still arriving."}, status=409)
    if not uploads:
        return JsonResponse({"error": "No files were uploaded."}, status=400)
    # A double click or a second tab must not ingest the batch twice.
    if not upload_batches.claim(batch):
        return JsonResponse({"error": "This batch is already being processed."}, status=409)
    # Requests autocommit, so the worker sees the claim.
    ingest_upload_batch.delay(batch.pk, upload_batches.Origin.of(request).as_task_args())
    batch.refresh_from_db()
    return _status_json(batch)


@require_GET
@staff_required
def batch_status(request: HttpRequest, code) -> JsonResponse:
    """Answer the page's poll: still processing (202), or the report."""
    batch = _own_batch(request, code, "upload-status")
    if batch is None:
        return JsonResponse({"error": "Unknown upload batch."}, status=404)
    return _status_json(batch)
