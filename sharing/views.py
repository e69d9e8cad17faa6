"""Recipient pages: open a link, verify, the home page of what was shared, sign out."""

from __future__ import annotations

import math

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
from sharing import notices, session, sizes, throttle, verification
from sharing.denials import deny, pending_share
from sharing.models import ShareLink
from sharing.services import find_link, lock_link, send_code_email

GENERIC_FAILURE = "Those details do not match. Check them and try again."


def unavailable(request: HttpRequest, share: ShareLink) -> HttpResponse:
    """Answer for a link the visitor holds that can no longer be used: 410 or 423."""
    status = share.status
    code = 423 if status == ShareLink.Status.LOCKED else 410
    context = {"practice": share.practice, "status": status}
    if status == ShareLink.Status.EXPIRED:
        context["ended"] = share.expires_at
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
    if share.status == ShareLink.Status.EXPIRED:
        # Remembered, so that from its page the recipient can ask the practice for a new one.
        session.bind(request, share)
        return unavailable(request, share)
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


def _typed(request: HttpRequest) -> dict[str, str]:
    """Return what the visitor typed, to fill the form in again after a refusal."""
    fields = ("password", "code", "birth_day", "birth_month", "birth_year")
    return {f: request.POST.get(f, "")[:200] for f in fields}


def _verify_page(
    request: HttpRequest,
    share: ShareLink,
    error: str = "",
    *,
    typed: dict[str, str] | None = None,
    status: int = 200,
    **extra,
) -> HttpResponse:
    context = {
        "share": share,
        "practice": share.practice,
        "error": error,
        "typed": typed or {},
        "months": verification.month_names(),
        "date_order": list(share.practice.date_order or "dmy"),
        **extra,
    }
    return render(request, "sharing/verify_recipient.html", context, status=status)


def _read_answers(request: HttpRequest, share: ShareLink) -> tuple[str, str, str]:
    """Return (password, second answer, what to fix) from the form, comparing no secret."""
    password = request.POST.get("password", "")[:200].strip()
    if share.recipient_kind == ShareLink.Recipient.PATIENT:
        second, problem = verification.birth_date_from(request.POST)
    else:
        second = "".join(c for c in request.POST.get("code", "")[:40] if c.isdigit())
        problem = "" if len(second) == 6 else "The code from the email has 6 digits."
    if not password:
        problem = "Type the password the practice gave you."
    return password, second, problem


@sensitive_variables("password", "second")
@sensitive_post_parameters(
    "password", "birth_date", "birth_day", "birth_month", "birth_year", "code"
)
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
    password, second, problem = _read_answers(request, share)
    if problem and share.status == ShareLink.Status.ACTIVE:
        # Nothing was compared: the form only says what is missing and keeps what was typed.
        return _verify_page(request, share, problem, typed=_typed(request), status=400)
    # Attempts from one address, and attempts on one link, run one at a time against fresh
    # rows, so parallel guesses cannot slip past the failure counts, the 429 or the lock.
    # Lock order: the address's advisory lock, the link's row, then the audit chain head.
    with throttle.one_attempt_at_a_time(client_ip(request)):
        share = lock_link(share.pk)
        return _check_attempt(request, share, password, second)


@sensitive_variables("password", "second")
def _check_attempt(
    request: HttpRequest, share: ShareLink, password: str, second: str
) -> HttpResponse:
    address = client_ip(request)
    state = throttle.address_state(address)
    if state.retry_after:
        _audit_attempt(request, share, Outcome.DENIED, {"reason": "rate_limited"})
        context = {"practice": share.practice, "minutes": math.ceil(state.retry_after / 60)}
        response = render(request, "sharing/throttled.html", context, status=429)
        response["Retry-After"] = str(state.retry_after)
        return response
    if share.status != ShareLink.Status.ACTIVE:
        throttle.record_address_failure(address, share)
        _audit_attempt(request, share, Outcome.DENIED, {"reason": share.status})
        return unavailable(request, share)
    if state.too_soon:
        # Not judged and not counted: the answers may well be right (see sharing.throttle).
        _audit_attempt(request, share, Outcome.DENIED, {"reason": "too_soon"})
        seconds = state.wait_seconds
        response = _verify_page(
            request, share, "", typed=_typed(request), status=429, wait_seconds=seconds
        )
        response["Retry-After"] = str(seconds)
        return response
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
        left = max(0, throttle.LINK_LIMIT - share.failed_attempts)
        return _verify_page(
            request, share, GENERIC_FAILURE, typed=_typed(request), attempts_left=left
        )
    throttle.reset_link(share)
    first_open = share.open_count == 0
    ShareLink.objects.filter(pk=share.pk).update(last_access_at=timezone.now())
    share.open_count += 1
    share.save(update_fields=["open_count"])
    session.mark_verified(request)
    audit.record(Action.SHARE_VERIFY, request=request, share=share, outcome=Outcome.OK)
    if first_open:
        notices.link_used(share, "opened")
    return _see_other("/s/home/")


@require_POST
def send_code(request: HttpRequest) -> HttpResponse:
    """Email a referrer a one-time code; only a POST sends one, and the page says if it did."""
    share = pending_share(request)
    if share is None:
        raise deny(request, "no_link", scope=scope_for(request))
    if share.recipient_kind != ShareLink.Recipient.REFERRER:
        raise deny(request, "not_referrer", share=share)
    if share.status != ShareLink.Status.ACTIVE:
        _refuse_code(request, share, share.status)
        return unavailable(request, share)
    wait = verification.code_wait(share)
    if wait:
        _refuse_code(request, share, "too_many_codes")
        messages.info(
            request,
            "No new code was sent: one went out moments ago and each code you were sent "
            "still works for 10 minutes (check your spam folder too). "
            f"You can ask for another in {_duration(wait)}.",
        )
        return _see_other("/s/")
    code = verification.issue_code(share)
    try:
        send_code_email(share, code, request=request)
    except OSError:
        verification.spend_code(share, code)
        _refuse_code(request, share, "mail_failed")
        messages.error(
            request,
            "The code could not be sent just now. Try again in a minute, or call "
            f"{share.practice.name}.",
        )
        return _see_other("/s/")
    messages.success(
        request,
        "A code is on its way to the address the practice has for you. It works once, "
        "for 10 minutes; any code you were sent earlier works too until it expires.",
    )
    return _see_other("/s/")


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"


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
    attachments = list(scope.attachments().select_related("blob").order_by("created_at"))
    audit.record(Action.VIEW_STUDY, request=request, obj=share.study, **scope.audit_kwargs())
    found = sizes.series_sizes([s.pk for s in series])
    for s in series:
        s.sizes = found.get(s.pk, sizes.SeriesSizes(0, 0, 0, 0))
    attachment_bytes = sum(a.blob.plain_size for a in attachments)
    context = {
        "share": share,
        "practice": share.practice,
        "study": share.study,
        "series": series,
        "photos": [a for a in attachments if a.kind == "photo"],
        "documents": [a for a in attachments if a.kind != "photo"],
        "can_download": scope.can_download,
        "used_up": share.allow_download and share.downloads_left == 0,
        "totals": sizes.totals(found, attachment_bytes),
        "for_patient": share.recipient_kind == ShareLink.Recipient.PATIENT,
        "deidentified": share.deidentified,
    }
    return render(request, "sharing/home.html", context)


@require_POST
def end_session(request: HttpRequest) -> HttpResponse:
    """Forget the share in this browser."""
    session.clear(request)
    request.session.cycle_key()
    return render(request, "sharing/ended.html")
