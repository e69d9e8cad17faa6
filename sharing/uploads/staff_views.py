"""Staff side of upload links: ask for images, see what came in, accept or decline it."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

import audit
from audit.models import Action
from portal.access import fetch_or_404
from portal.workspace import once
from portal.workspace.decorators import staff_required
from sharing.models import ReceivedFile
from sharing.uploads import decisions, services
from sharing.uploads.waiting import CHOOSING, chosen_files, look_up_records, waiting_items

OPEN_LINKS_SHOWN = 100


def _links(request: HttpRequest):
    return services.upload_links_in_scope(request.scope)


@require_POST
@staff_required
def ask_for_images(request: HttpRequest, code) -> HttpResponse:
    """Issue an upload link for a patient and show it with its password, once."""
    scope = request.scope
    patient = fetch_or_404(request, scope, scope.patients(), code=code)
    if not scope.can_upload:
        raise fetch_or_404(request, scope, scope.patients().none(), code=code)
    key = request.POST.get(once.FIELD, "")[:64]
    try:
        # The form's key commits with the link, or neither does.
        with transaction.atomic():
            if not once.first_time(request, key):
                return once.already_issued(request, "/received/", f"/patients/{patient.code}/")
            days = int(request.POST.get("expires_in_days") or scope.practice.share_default_days)
            issued = services.issue_upload_link(
                patient=patient,
                created_by=request.user,
                sender_name=request.POST.get("sender_name", "").strip(),
                expires_in_days=days,
                request=request,
            )
    except (ValidationError, ValueError) as exc:
        message = exc.messages[0] if isinstance(exc, ValidationError) else "Enter a number of days."
        return render(
            request,
            "sharing/upload_issued.html",
            {"patient": patient, "error": message, "scope": scope},
            status=400,
        )
    # The portal's own address, as for share links: never the Host header a request carried.
    url = settings.PORTAL_BASE_URL.rstrip("/") + issued.path
    context = {"patient": patient, "issued": issued, "url": url, "scope": scope}
    return render(request, "sharing/upload_issued.html", context)


@require_GET
@staff_required
def received_list(request: HttpRequest) -> HttpResponse:
    """List upload links with files waiting for a decision, the patient's first."""
    scope = request.scope
    links = (
        _links(request)
        .annotate(waiting=Count("files", filter=Q(files__state=ReceivedFile.State.PENDING)))
        .filter(waiting__gt=0)
        .select_related("patient", "practice")
        .order_by("-created_at")
    )
    groups = []
    for link in links:
        items = waiting_items(link.files.filter(state="pending").order_by("pk"))
        look_up_records(items, link)
        groups.append((link, items))
    # Links a sender may still use: one issued by mistake is revoked here, one locked after
    # wrong answers unlocked.
    still_open = (
        _links(request)
        .filter(revoked_at__isnull=True, expires_at__gt=timezone.now())
        .select_related("patient")
        .order_by("-created_at")[:OPEN_LINKS_SHOWN]
    )
    audit.record(
        Action.SEARCH, request=request, detail={"page": "received"}, **scope.audit_kwargs()
    )
    context = {"groups": groups, "still_open": still_open, "scope": scope}
    return render(request, "sharing/received.html", context)


def _decide(request: HttpRequest, code, accept: bool) -> HttpResponse:
    """Accept or decline a link's waiting files: those ticked on the page, or all of them
    when the request names none and comes from no page's choice."""
    scope = request.scope
    link = fetch_or_404(
        request, scope, _links(request).select_related("patient", "practice"), code=code
    )
    chosen = set(request.POST.getlist("file"))
    if CHOOSING in request.POST and not chosen:
        messages.error(request, "Tick the files to accept or decline first.")
        return redirect("/received/")
    files = list(link.files.filter(state=ReceivedFile.State.PENDING).select_related("blob", "link"))
    if chosen:
        files = chosen_files(files, chosen)
        if not files:
            messages.error(request, "What was ticked is no longer waiting: look at the list again.")
            return redirect("/received/")
    if accept:
        accepted = decisions.accept(files, by=request.user, request=request)
        if accepted.decided:
            # Messages travel in a cookie: never the patient's name.
            done = _files(len(accepted.decided))
            messages.success(request, f"Accepted {done} into the patient's record.")
        if accepted.held:
            one = len(accepted.held) == 1
            it, names = ("it", "names") if one else ("them", "name")
            messages.error(
                request,
                f"{_files(len(accepted.held))} not accepted: {'it' if one else 'they'} {names} "
                f"another patient of the practice. Decline {it}, or ask the sender whose "
                f"{'it is' if one else 'they are'}.",
            )
    else:
        decisions.decline(files, by=request.user, request=request)
        if files:
            messages.success(request, f"Declined {_files(len(files))}: they were shredded.")
    return redirect("/received/")


def _files(count: int) -> str:
    return f"{count} file{'s' if count != 1 else ''}"


@require_POST
@staff_required
def accept_files(request: HttpRequest, code) -> HttpResponse:
    """File the waiting files (all, or those ticked) into the patient's record."""
    return _decide(request, code, accept=True)


@require_POST
@staff_required
def decline_files(request: HttpRequest, code) -> HttpResponse:
    """Shred the waiting files (all, or those ticked); the list keeps a line for each."""
    return _decide(request, code, accept=False)


@require_POST
@staff_required
def revoke_upload_link(request: HttpRequest, code) -> HttpResponse:
    link = fetch_or_404(request, request.scope, _links(request), code=code)
    services.revoke_upload_link(link, by=request.user, request=request)
    return redirect("/received/")


@require_POST
@staff_required
def unlock_upload_link(request: HttpRequest, code) -> HttpResponse:
    """Lift the lock wrong answers put on a link; the sender may try again at once."""
    link = fetch_or_404(request, request.scope, _links(request), code=code)
    services.unlock_upload_link(link, by=request.user, request=request)
    return redirect("/received/")
