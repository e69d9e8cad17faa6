"""Staff pages of the DICOM network: what arrived from which device, and sending onward."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

import audit
from audit.models import Action
from portal.access import deny, fetch_or_404
from portal.dicomnet.destinations import allowed
from portal.models import Arrival, DicomNode, DicomPeer, Transfer
from portal.workspace.decorators import staff_required

ARRIVALS_SHOWN = 100


@require_GET
@staff_required
def arrivals(request: HttpRequest) -> HttpResponse:
    """List the studies that arrived over DICOM lately, newest first, with their device."""
    scope = request.scope
    rows = (
        Arrival.objects.filter(practice=scope.practice, study__in=scope.studies())
        .select_related("study__patient", "peer")
        .order_by("-received_at")[:ARRIVALS_SHOWN]
    )
    audit.record(
        Action.SEARCH, request=request, detail={"page": "arrivals"}, **scope.audit_kwargs()
    )
    context = {"arrivals": rows, "scope": scope, **_how_devices_send(scope.practice)}
    return render(request, "portal/arrivals.html", context)


def _how_devices_send(practice) -> dict:  # noqa: ANN001
    """What a device's technician asks for: the called AE title, host and port, who may send."""
    return {
        "node": DicomNode.objects.filter(practice=practice).first(),
        "senders": DicomPeer.objects.filter(practice=practice, may_send=True).order_by("name"),
        "dicom_host": urlsplit(settings.PORTAL_BASE_URL).hostname or "this server",
        "dicom_port": settings.PORTAL_DICOM_PORT,
    }


@require_POST
@staff_required
def send_study(request: HttpRequest, code) -> HttpResponse:
    """Queue the study for a configured destination and show the transfer's progress."""
    scope = request.scope
    study = fetch_or_404(request, scope, scope.studies().select_related("patient"), code=code)
    destination = fetch_or_404(
        request,
        scope,
        DicomPeer.objects.filter(practice=scope.practice, port__isnull=False).exclude(address=None),
        code=request.POST.get("destination") or None,
    )
    if not allowed(destination.address):
        # Not offered on the study page either (portal.dicomnet.destinations).
        raise deny(request, scope, "destination", reason="destination_not_allowed")
    if not scope.can_view_pixels:
        # Sending images out is at least as much as opening them.
        raise deny(request, scope, "study", reason="role_may_not_open_images")
    total = scope.instances().filter(series__study=study).count()
    with transaction.atomic():
        transfer = Transfer.objects.create(
            practice=scope.practice,
            study=study,
            destination=destination,
            created_by=request.user,
            total=total,
        )
        audit.record(
            Action.DICOM_SEND,
            request=request,
            patient=study.patient,
            obj=study,
            detail={
                "phase": "requested",
                "transfer": str(transfer.code),
                "destination": destination.name,
                "ae_title": destination.ae_title,
                "host": destination.address,
                "port": destination.port,
                "instances": total,
            },
            **scope.audit_kwargs(),
        )
        transaction.on_commit(lambda: _enqueue(transfer.pk))
    return redirect(f"/transfers/{transfer.code}/")


def _enqueue(transfer_pk: int) -> None:
    from portal.dicomnet.tasks import send_study as task

    task.delay(transfer_pk)


@require_GET
@staff_required
def transfer_detail(request: HttpRequest, code) -> HttpResponse:
    """Show a transfer's progress and what the destination said of each instance."""
    scope = request.scope
    transfer = fetch_or_404(
        request,
        scope,
        Transfer.objects.filter(practice=scope.practice, study__in=scope.studies()).select_related(
            "study__patient", "destination"
        ),
        code=code,
    )
    items = transfer.items.select_related("instance").order_by("pk")
    running = transfer.status in (Transfer.Status.QUEUED, Transfer.Status.SENDING)
    context = {"transfer": transfer, "items": items, "running": running, "scope": scope}
    return render(request, "portal/transfer.html", context)
