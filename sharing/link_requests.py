"""A recipient whose link expired or whose downloads are used up asks for a new link.

The request waits in the front desk's list of links; staff issue the new link themselves
(never automatically), and issuing one for the same study and kind of recipient settles it
(sharing.services.issue_link).
Requests are throttled per address like verification attempts, and a link has at most one
waiting request.
"""

from __future__ import annotations

import math

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

import audit
from audit.models import Action, Outcome
from audit.services import client_ip
from portal.access import scope_for
from sharing import throttle
from sharing.denials import deny, pending_share
from sharing.models import LinkRequest, ShareLink
from sharing.services import lock_link


def reason_for_new_link(share: ShareLink) -> str:
    """Return why a recipient may ask for a new link ("expired", "used_up"), or ""."""
    status = share.status
    if status == ShareLink.Status.EXPIRED:
        return "expired"
    if status == ShareLink.Status.ACTIVE and share.allow_download and share.downloads_left == 0:
        return "used_up"
    return ""


@require_POST
def request_link(request: HttpRequest) -> HttpResponse:
    """Put the visitor's request for a new link in the front desk's list."""
    share = pending_share(request)
    if share is None:
        raise deny(request, "no_link", scope=scope_for(request))
    address = client_ip(request)
    with throttle.one_attempt_at_a_time(address):
        share = lock_link(share.pk)
        context = {"practice": share.practice}
        reason = reason_for_new_link(share)
        if not reason:
            raise deny(request, f"no_request_{share.status}", share=share)
        state = throttle.address_state(address)
        if state.retry_after or state.too_soon:
            wait = state.retry_after or state.wait_seconds
            _audit(request, share, Outcome.DENIED, {"reason": "rate_limited"})
            context["minutes"] = math.ceil(wait / 60)
            response = render(request, "sharing/throttled.html", context, status=429)
            response["Retry-After"] = str(wait)
            return response
        waiting = LinkRequest.objects.filter(share=share, handled_at__isnull=True).exists()
        if not waiting:
            LinkRequest.objects.create(share=share, reason=reason, created_at=timezone.now())
            # Counted like a failed attempt, so requests from one address cannot flood the list.
            throttle.record_address_failure(address, share)
            _audit(request, share, Outcome.OK, {"reason": reason})
        context["already"] = waiting
        return render(request, "sharing/request_sent.html", context)


def _audit(request: HttpRequest, share: ShareLink, outcome: str, detail: dict) -> None:
    audit.record(Action.SHARE_REQUEST, request=request, share=share, outcome=outcome, detail=detail)
