"""Recipient pages: open a link, verify, the home page of what was shared, sign out."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import audit
from audit.models import Action, Outcome
from audit.services import client_ip
from portal.access import scope_for
from sharing import session, throttle, verification
from sharing.denials import deny, pending_share
from sharing.models import ShareLink
from sharing.services import find_link, send_code_email

GENERIC_FAILURE = "Those details do not match. Check them and try again."


def unavailable(request: HttpRequest, share: ShareLink) -> HttpResponse:
    """Answer for a link the visitor holds that can no longer be used: 410 or 423."""
    status = share.status
    code = 423 if status == ShareLink.Status.LOCKED else 410
    context = {"practice": share.practice, "status": status}
    return render(request, "sharing/unavailable.html", context, status=code)


@never_cache
@require_GET
def open_share(request: HttpRequest, token: str) -> HttpResponse:
    """Trade the token in the URL for a session entry, then drop it from the address bar.

    A GET consumes nothing (mail scanners follow links): no code is sent, nothing counted.
    """
    share = find_link(token)
    if share is None:
        # Guessed or altered tokens are recorded by address only, never the token itself.
        audit.record(
            Action.SHARE_OPEN, request=request, outcome=Outcome.DENIED, detail={"status": "unknown"}
        )
        raise Http404
    audit.record(
        Action.SHARE_OPEN,
        request=request,
        share=share,
        outcome=Outcome.OK if share.status == ShareLink.Status.ACTIVE else Outcome.DENIED,
        detail={"status": share.status},
    )
    if share.status != ShareLink.Status.ACTIVE:
        session.clear(request)
        return unavailable(request, share)
    session.bind(request, share)
    return _see_other()


def _see_other(to: str = "/s/") -> HttpResponse:
    response = HttpResponse(status=303)
    response["Location"] = to
    return response


def _audit_attempt(request: HttpRequest, share: ShareLink, outcome: str, detail: dict) -> None:
    """Record a refused or failed verification attempt at a link."""
    audit.record(Action.SHARE_VERIFY, request=request, share=share, outcome=outcome, detail=detail)


def _normalise_second(share: ShareLink, value: str) -> str:
    value = (value or "").strip()
    if share.recipient_kind == ShareLink.Recipient.PATIENT:
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            return ""
    return value.replace(" ", "")


def _verify_page(request: HttpRequest, share: ShareLink, error: str = "") -> HttpResponse:
    context = {"share": share, "practice": share.practice, "error": error}
    return render(request, "sharing/verify_recipient.html", context)


@sensitive_variables("password", "second")
@sensitive_post_parameters("password", "birth_date", "code")
@require_http_methods(["GET", "POST"])
def verify_recipient(request: HttpRequest) -> HttpResponse:
    """Ask for the link's password and birth date (patients) or emailed code (referrers)."""
    share = pending_share(request)
    if share is None:
        raise deny(request, "no_link", scope=scope_for(request))
    if session.verified_share(request) is not None:
        return _see_other("/s/home/")
    if request.method == "GET":
        if share.status != ShareLink.Status.ACTIVE:
            _audit_attempt(request, share, Outcome.DENIED, {"reason": share.status})
            return unavailable(request, share)
        return _verify_page(request, share)
    # Attempts from one address, and attempts on one link, run one at a time against fresh
    # rows, so parallel guesses cannot slip past the failure counts, the 429 or the lock.
    with throttle.one_attempt_at_a_time(client_ip(request)):
        share = ShareLink.objects.select_for_update().select_related("practice").get(pk=share.pk)
        return _check_attempt(request, share)


@sensitive_variables("password", "second")
def _check_attempt(request: HttpRequest, share: ShareLink) -> HttpResponse:
    address = client_ip(request)
    state = throttle.address_state(address)
    if state.retry_after:
        _audit_attempt(request, share, Outcome.DENIED, {"reason": "rate_limited"})
        response = render(
            request, "sharing/throttled.html", {"practice": share.practice}, status=429
        )
        response["Retry-After"] = str(state.retry_after)
        return response
    if share.status != ShareLink.Status.ACTIVE:
        throttle.record_address_failure(address, share)
        _audit_attempt(request, share, Outcome.DENIED, {"reason": share.status})
        return unavailable(request, share)
    if state.too_soon:
        throttle.record_address_failure(address, share)
        _audit_attempt(request, share, Outcome.FAILED, {"reason": "too_soon"})
        return _verify_page(request, share, GENERIC_FAILURE)
    field = "birth_date" if share.recipient_kind == ShareLink.Recipient.PATIENT else "code"
    password = request.POST.get("password", "")[:200]
    second = _normalise_second(share, request.POST.get(field, "")[:40])
    if not verification.check_answers(share, password, second):
        locked = throttle.record_link_failure(share, address, request=request)
        _audit_attempt(
            request,
            share,
            Outcome.FAILED,
            {"reason": "mismatch", "failures": share.failed_attempts},
        )
        if locked:
            return unavailable(request, share)
        return _verify_page(request, share, GENERIC_FAILURE)
    throttle.reset_link(share)
    ShareLink.objects.filter(pk=share.pk).update(last_access_at=timezone.now())
    share.open_count += 1
    share.save(update_fields=["open_count"])
    session.mark_verified(request)
    audit.record(Action.SHARE_VERIFY, request=request, share=share, outcome=Outcome.OK)
    return _see_other("/s/home/")


@require_POST
def send_code(request: HttpRequest) -> HttpResponse:
    """Email a referrer a fresh one-time code; only a POST sends one."""
    share = pending_share(request)
    if share is None:
        raise deny(request, "no_link", scope=scope_for(request))
    if share.recipient_kind != ShareLink.Recipient.REFERRER:
        raise deny(request, "not_referrer", share=share)
    if share.status != ShareLink.Status.ACTIVE:
        _refuse_code(request, share, share.status)
        return unavailable(request, share)
    if verification.can_send_code(share):
        code = verification.issue_code(share)
        send_code_email(share, code, request=request)
    else:
        # The answer stays the same, so the page does not say whether a code went out.
        _refuse_code(request, share, "too_many_codes")
    messages.info(
        request,
        "If the address the practice has for you is right, a code is on its way. "
        "It works once, for 10 minutes.",
    )
    return _see_other("/s/")


def _refuse_code(request: HttpRequest, share: ShareLink, reason: str) -> None:
    audit.record(
        Action.SHARE_EMAIL,
        request=request,
        share=share,
        outcome=Outcome.DENIED,
        detail={"email": "sign_in_code", "reason": reason},
    )


@require_GET
def recipient_home(request: HttpRequest) -> HttpResponse:
    """Show what was shared, when the link expires, and how to view and download it."""
    scope = scope_for(request)
    share = session.verified_share(request)
    if scope is None or share is None:
        # An opened link whose session ended, or not yet verified, goes back to its own page:
        # the password form or the notice that it expired, was revoked or is locked.
        if pending_share(request) is not None:
            return _see_other("/s/")
        raise deny(request, "no_link", scope=scope)
    series = list(scope.series().select_related("study").order_by("number", "created_at"))
    attachments = list(scope.attachments().order_by("created_at"))
    audit.record(Action.VIEW_STUDY, request=request, obj=share.study, **scope.audit_kwargs())
    context = {
        "share": share,
        "practice": share.practice,
        "study": share.study,
        "series": series,
        "photos": [a for a in attachments if a.kind == "photo"],
        "documents": [a for a in attachments if a.kind != "photo"],
        "can_download": scope.can_download,
    }
    return render(request, "sharing/home.html", context)


@require_POST
def end_session(request: HttpRequest) -> HttpResponse:
    """Forget the share in this browser."""
    session.clear(request)
    request.session.cycle_key()
    return render(request, "sharing/ended.html")
