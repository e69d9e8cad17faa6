"""Staff management of share links: list, revoke, unlock, extend (every action audited)."""

from __future__ import annotations

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
from portal.decorators import staff_required
from portal.forms import ExtendForm
from sharing import services
from sharing.models import ShareLink

STATUSES = ["active", "expired", "revoked", "locked"]


def _shares(request: HttpRequest):
    """Return the links of studies the staff member may see."""
    scope = request.scope
    return ShareLink.objects.filter(practice=scope.practice, study__in=scope.studies())


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
    shares = _shares(request).select_related("patient", "study", "created_by")
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
    page = Paginator(shares, 50).get_page(request.GET.get("page"))
    # The list names patients and recipients: a read of patient data like a search.
    audit.record(
        Action.SEARCH,
        request=request,
        detail={"list": "share links", "status": status, "results": page.paginator.count},
        **request.scope.audit_kwargs(),
    )
    return render(
        request,
        "portal/share_list.html",
        {"page": page, "status": status, "statuses": STATUSES, "extend_form": ExtendForm()},
    )


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
    form = ExtendForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the number of days the link should stay open.")
        return _back(request, share)
    try:
        services.extend_link(
            share, days=form.cleaned_data["days"], by=request.user, request=request
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"The link now expires on {share.expires_at:%Y-%m-%d}.")
    return _back(request, share)
