"""Staff management of share links: list, revoke, unlock, extend (every action audited)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

import audit
from audit.models import Action
from portal.access import fetch_or_404
from portal.workspace.decorators import staff_required
from sharing import services
from sharing.link_list import annotate_for_list, links_in_scope, with_extend_limits
from sharing.models import LinkRequest, ShareLink

STATUSES = ["active", "expired", "revoked", "locked"]


def _shares(request: HttpRequest):
    """Return the links of studies the staff member may see."""
    return links_in_scope(request.scope)


def _back(request: HttpRequest, share: ShareLink) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("shares:list")


@require_GET
@staff_required
def list_shares(request: HttpRequest) -> HttpResponse:
    """List the practice's links with status, opens, downloads and last access."""
    now = timezone.now()
    shares = annotate_for_list(_shares(request))
    status = request.GET.get("status", "")
    if status == "active":
        shares = shares.filter(revoked_at__isnull=True, locked_at__isnull=True, expires_at__gt=now)
    elif status == "expired":
        shares = shares.filter(revoked_at__isnull=True, expires_at__lte=now)
    elif status == "revoked":
        shares = shares.filter(revoked_at__isnull=False)
    elif status == "locked":
        shares = shares.filter(
            Q(locked_at__isnull=False), revoked_at__isnull=True, expires_at__gt=now
        )
    one = _link_code(request.GET.get("link", ""))
    if one is not None:  # from a notice email: that link alone
        shares = shares.filter(code=one)
    page = Paginator(shares, 50).get_page(request.GET.get("page"))
    requests = list(
        LinkRequest.objects.filter(share__in=_shares(request), handled_at__isnull=True)
        .select_related(
            "share__patient", "share__study", "share__source_patient", "share__source_study"
        )
        .order_by("created_at")
    )
    # The list names patients and recipients: a read of patient data like a search.
    audit.record(
        Action.SEARCH,
        request=request,
        detail={"list": "share links", "status": status, "results": page.paginator.count},
        **request.scope.audit_kwargs(),
    )
    context = {
        "page": page,
        "shares": with_extend_limits(page.object_list),
        "status": status,
        "statuses": STATUSES,
        "link_requests": requests,
        "one_link": one is not None,
    }
    return render(request, "portal/share_list.html", context)


def _link_code(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@require_POST
@staff_required
def settle_request(request: HttpRequest, code) -> HttpResponse:
    """Take a request for a new link off the list (staff answered it another way)."""
    found = LinkRequest.objects.filter(share__in=_shares(request))
    link_request = fetch_or_404(request, request.scope, found, code=code)
    if link_request.handled_at is not None:  # settled meanwhile, say in another tab
        messages.info(request, "That request was already off the list.")
        return redirect("shares:list")
    link_request.handled_at = timezone.now()
    link_request.handled_by = request.user
    link_request.save(update_fields=["handled_at", "handled_by"])
    audit.record(
        Action.SHARE_REQUEST,
        request=request,
        user=request.user,
        share=link_request.share,
        detail={"settled": True},
    )
    messages.success(request, "The request is off the list.")
    return redirect("shares:list")


@require_POST
@staff_required
def revoke_share(request: HttpRequest, code) -> HttpResponse:
    """Revoke a link at once; a link already revoked (say in another tab) stays as it was."""
    share = fetch_or_404(request, request.scope, _shares(request), code=code)
    if services.revoke_link(share, by=request.user, request=request):
        messages.success(request, "The link is revoked. It no longer opens.")
    else:
        messages.info(request, "That link was already revoked; nothing changed.")
    return _back(request, share)


@require_POST
@staff_required
def unlock_share(request: HttpRequest, code) -> HttpResponse:
    """Lift the lock a link got after failed password attempts."""
    share = fetch_or_404(request, request.scope, _shares(request), code=code)
    if share.revoked_at:
        messages.error(request, "A revoked link cannot be unlocked.")
    elif services.unlock_link(share, by=request.user, request=request):
        messages.success(request, "The link is unlocked.")
    else:
        messages.info(request, "That link was not locked; nothing changed.")
    return _back(request, share)


@require_POST
@staff_required
def extend_share(request: HttpRequest, code) -> HttpResponse:
    """Move a link's expiry, never past the practice maximum from when it was issued."""
    share = fetch_or_404(request, request.scope, _shares(request), code=code)
    try:
        days = int(request.POST.get("days", ""))
    except ValueError:
        messages.error(request, "Give the number of days the link should stay open.")
        return _back(request, share)
    try:
        services.extend_link(share, days=days, by=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        when = timezone.localtime(share.expires_at, share.practice.zone)
        messages.success(request, f"The link now expires on {when:%-d %B %Y, %H:%M} ({when:%Z}).")
    return _back(request, share)
