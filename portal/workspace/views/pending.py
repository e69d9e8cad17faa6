"""The "needs a patient" queue: files ingested without a patient, attached by staff."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from portal.access import fetch_or_404
from portal.ingest.pending import resolve
from portal.models import PendingFile
from portal.workspace.decorators import staff_required


def _queue(request: HttpRequest):  # noqa: ANN202 - a queryset
    return PendingFile.objects.filter(practice=request.scope.practice).select_related("blob")


@require_GET
@staff_required
def pending_list(request: HttpRequest) -> HttpResponse:
    """List the files that wait for a patient, oldest first."""
    return render(request, "portal/pending.html", {"files": _queue(request)})


@require_POST
@staff_required
def attach_pending(request: HttpRequest, code: UUID) -> HttpResponse:
    """Attach one waiting file to the patient with the given record number."""
    pending = fetch_or_404(request, request.scope, _queue(request), code=code)
    number = request.POST.get("patient_id", "").strip()
    patient = request.scope.patients().filter(patient_id=number).first() if number else None
    if patient is None:
        messages.error(request, "No patient with that record number.")
        return redirect("portal:pending")
    report = resolve(pending, patient, user=request.user, request=request)
    # Messages travel in a cookie: no file name or record number (either may name the patient).
    if report.status == "stored":
        messages.success(request, "The file is attached to that patient's record.")
    else:
        messages.error(request, f"The file was not attached: {report.reason}.")
    return redirect("portal:pending")
