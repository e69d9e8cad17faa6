"""The sender's pages: open the upload link, verify, send files, see what arrived."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import TooManyFilesSent
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

import audit
from audit.models import Action, Outcome
from audit.services import client_ip
from portal import access
from portal.ingest.pipeline import StorageFailed
from portal.vault.uploads import NotStored, VaultUploadHandler
from portal.vault.windowed import WindowedBlob
from sharing import throttle, verification
from sharing.models import ShareLink, UploadLink
from sharing.uploads import intake, services
from sharing.views import unavailable

LINK_KEY, VERIFIED_KEY, SEEN_KEY = "upload_link", "upload_verified", "upload_seen"
GENERIC_FAILURE = "Those details do not match. Check them and try again."
# The page's script sends the chosen files in requests of at most this much (static/sharing/
# upload_send.js): a dropped connection costs one group, not the whole send.
SEND_GROUP_BYTES = 32 * 2**20
TOO_MANY_FILES = (
    f"At most {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files can be sent at once, so nothing "
    "was received. Put the files in a ZIP (a CD's contents, for one) and send that, or send "
    "them in smaller groups."
)
LINK_FULL = (
    "This link has no room left for more files: what is sent now is not received. To send "
    "more, ask the practice for another link."
)
LINK_FILES_FULL = (
    "This link has taken the most files it can ({}): what is sent now is not received. To "
    "send more, ask the practice for another link."
)
NOT_A_FILE_FORM = "Choose the files with the form on this page, then send them."
NOT_STORED = (
    "The files could not be stored just now, so nothing was received. Please send them again "
    "later; if it happens again, tell the practice."
)
UNREADABLE_SEND = (
    "The files could not be read, so nothing was received. A file name may be too long: give "
    "the file a shorter name (under 200 characters) and send again."
)


def _see_other(to: str) -> HttpResponse:
    response = HttpResponse(status=303)
    response["Location"] = to
    return response


def _pending_link(request: HttpRequest) -> UploadLink | None:
    code = request.session.get(LINK_KEY)
    if not code:
        return None
    qs = UploadLink.objects.select_related("practice", "patient")
    return qs.filter(code=code).first()


def _verified_link(request: HttpRequest) -> UploadLink | None:
    """Return the link this session verified, if it and the session are still valid."""
    link = _pending_link(request)
    if link is None or VERIFIED_KEY not in request.session:
        return None
    now = timezone.now()
    verified_at = datetime.fromtimestamp(request.session[VERIFIED_KEY], tz=UTC)
    seen_at = datetime.fromtimestamp(request.session.get(SEEN_KEY, 0), tz=UTC)
    idle = timedelta(minutes=settings.RECIPIENT_IDLE_TIMEOUT_MINUTES)
    absolute = timedelta(hours=settings.RECIPIENT_ABSOLUTE_SESSION_HOURS)
    if (
        link.status != ShareLink.Status.ACTIVE
        or now - seen_at > idle
        or now - verified_at > absolute
    ):
        request.session.pop(VERIFIED_KEY, None)
        return None
    request.session[SEEN_KEY] = now.timestamp()
    return link


def _deny(request: HttpRequest, reason: str, link: UploadLink | None = None) -> Http404:
    audit.record(
        Action.ACCESS_DENIED,
        request=request,
        practice=link.practice if link else None,
        patient=link.patient if link else None,
        outcome=Outcome.DENIED,
        detail={"model": "upload_link", "reason": reason},
    )
    return Http404()


def _unavailable(request: HttpRequest, link: UploadLink) -> HttpResponse:
    """The same 410 or 423 page as a share link that expired, was revoked or is locked."""
    return unavailable(request, link)


@never_cache
@require_GET
def open_upload(request: HttpRequest, token: str) -> HttpResponse:
    """Trade the token for a session entry and drop it from the address bar; consume nothing."""
    link = services.find_upload_link(token)
    if link is None:
        raise _deny(request, "unknown")
    if link.status != ShareLink.Status.ACTIVE:
        request.session.pop(LINK_KEY, None)
        return _unavailable(request, link)
    for key in (LINK_KEY, VERIFIED_KEY, SEEN_KEY):
        request.session.pop(key, None)
    request.session.cycle_key()
    request.session[LINK_KEY] = str(link.code)
    return _see_other("/u/")


def _page(request: HttpRequest, link: UploadLink, template: str, status: int = 200, **extra):
    context = {"link": link, "practice": link.practice,
               "per_send": settings.PORTAL_UPLOAD_LINK_MAX_REQUEST_BYTES,
               "group_bytes": SEND_GROUP_BYTES, **extra}  # fmt: skip
    return render(request, f"sharing/{template}", context, status=status)


def _send_page(request: HttpRequest, link: UploadLink, status: int = 200, **extra):
    """The sender's page with the latest files the link has received, and whether it is full."""
    latest = link.files.order_by("-created_at")[:200]
    full = _full(link)
    return _page(request, link, "upload_send.html", status=status, files=latest, full=full,
                 **extra)  # fmt: skip


def _full(link: UploadLink) -> str:
    """Why the link takes nothing more, or ""."""
    if link.room_left <= 0:
        return LINK_FULL
    if link.files.count() >= settings.PORTAL_UPLOAD_LINK_MAX_FILES:
        return LINK_FILES_FULL.format(settings.PORTAL_UPLOAD_LINK_MAX_FILES)
    return ""


def _typed(request: HttpRequest) -> dict[str, str]:
    """Return what the sender typed, to fill the form in again after a refusal."""
    fields = ("password", "birth_day", "birth_month", "birth_year")
    return {f: request.POST.get(f, "")[:200] for f in fields}


def _verify_page(request: HttpRequest, link: UploadLink, error: str = "", **extra):
    status = extra.pop("status", 200)
    extra.setdefault("typed", {})
    return _page(
        request,
        link,
        "upload_verify.html",
        status,
        error=error,
        months=verification.month_names(),
        date_order=list(link.practice.date_order or "dmy"),
        **extra,
    )


@never_cache
@sensitive_variables("password", "birth_date")
@sensitive_post_parameters("password", "birth_date", "birth_day", "birth_month", "birth_year")
@require_http_methods(["GET", "POST"])
def upload_home(request: HttpRequest) -> HttpResponse:
    """Verify (password and the patient's birth date), then offer the upload form."""
    link = _pending_link(request)
    if link is None:
        raise _deny(request, "no_link")
    if _verified_link(request) is not None:
        return _send_page(request, link)
    if link.status != ShareLink.Status.ACTIVE:
        return _unavailable(request, link)
    if request.method == "GET":
        return _verify_page(request, link)
    password = request.POST.get("password", "")[:200].strip()
    birth_date, problem = verification.birth_date_from(request.POST)
    if not password:
        problem = "Type the password the practice gave you."
    if problem:
        # Nothing was compared: the form only says what is missing and keeps what was typed.
        return _verify_page(request, link, problem, typed=_typed(request), status=400)
    address = client_ip(request)
    with throttle.one_attempt_at_a_time(address):
        link = (
            UploadLink.objects.select_for_update()
            .select_related("practice", "patient")
            .get(pk=link.pk)
        )
        state = throttle.address_state(address)
        if state.retry_after:
            response = render(
                request, "sharing/throttled.html", {"practice": link.practice}, status=429
            )
            response["Retry-After"] = str(state.retry_after)
            _attempt(request, link, Outcome.DENIED, "rate_limited")
            return response
        if link.status != ShareLink.Status.ACTIVE:
            return _unavailable(request, link)
        if state.too_soon:
            # Not judged and not counted: the answers may well be right (see sharing.throttle).
            _attempt(request, link, Outcome.DENIED, "too_soon")
            seconds = state.wait_seconds
            response = _verify_page(
                request, link, typed=_typed(request), status=429, wait_seconds=seconds
            )
            response["Retry-After"] = str(seconds)
            return response
        if not services.check_answers(link, password, birth_date):
            throttle.record_address_failure(address)
            locked = services.record_link_failure(link, request)
            _attempt(request, link, Outcome.FAILED, "mismatch")
            if locked:
                return _unavailable(request, link)
            left = max(0, services.LINK_LIMIT - link.failed_attempts)
            return _verify_page(
                request, link, GENERIC_FAILURE, typed=_typed(request), attempts_left=left
            )
        UploadLink.objects.filter(pk=link.pk).update(failed_attempts=0)
        _attempt(request, link, Outcome.OK, "")
    request.session.cycle_key()
    stamp = timezone.now().timestamp()
    request.session[VERIFIED_KEY] = stamp
    request.session[SEEN_KEY] = stamp
    return _see_other("/u/")


def _attempt(request: HttpRequest, link: UploadLink, outcome: str, reason: str) -> None:
    detail = {"reason": reason} if reason else {}
    services.record(Action.SHARE_VERIFY, link, request, outcome=outcome, **detail)


@csrf_exempt
@never_cache
@require_POST
def send_files(request: HttpRequest) -> HttpResponse:
    """Receive files (size-limited), check and seal them, say what became of each."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return HttpResponseBadRequest(
            "The send's length could not be read: send the files again.", content_type="text/plain"
        )
    if length > settings.PORTAL_UPLOAD_LINK_MAX_REQUEST_BYTES:
        link = _pending_link(request)
        context = {"practice": link.practice if link else None,
                   "per_send": settings.PORTAL_UPLOAD_LINK_MAX_REQUEST_BYTES}  # fmt: skip
        return render(request, "sharing/upload_too_big.html", context, status=413)
    # Looked at before the body is read (CSRF reads the form): a stranger's post is refused
    # without holding its files in memory.
    link = _verified_link(request)
    if link is None:
        pending = _pending_link(request)
        if pending is not None and pending.status != ShareLink.Status.ACTIVE:
            # Withdrawn or expired while the sender had the page open: said as when the
            # link is opened (its status is no news to a session that presented its token).
            services.record(
                Action.UPLOAD, pending, request, outcome=Outcome.DENIED, reason="link_closed"
            )
            return _unavailable(request, pending)
        raise access.deny(request, None, "upload_link", reason="not_verified")
    # A full link refuses before the body is read: each send would be received and
    # encrypted whole only to be refused.
    if _full(link):
        return _send_page(request, link, status=413)
    if request.content_type != "multipart/form-data":
        # Another kind of form was read already (the NUL check reads every form).
        return _send_page(request, link, status=400, error=NOT_A_FILE_FORM)
    # Set before the body is read (CSRF is checked by the inner view, after this): each file
    # is encrypted into the vault as it arrives, never held whole in memory nor written plain.
    # Those copies go when the send is answered; intake seals what it keeps on its own.
    arriving = VaultUploadHandler(
        request, settings.PORTAL_UPLOAD_LINK_MAX_REQUEST_BYTES, durable=False
    )
    request.upload_handlers = [arriving]
    try:
        # Read here, before the CSRF check (which would read it too and answer a bare 400),
        # so that a send that cannot be read is told why; the session named a verified link.
        try:
            request.POST  # noqa: B018
        except (MultiPartParserError, TooManyFilesSent) as exc:
            error = TOO_MANY_FILES if isinstance(exc, TooManyFilesSent) else UNREADABLE_SEND
            return _send_page(request, link, status=400, error=error)
        except NotStored:
            return _send_page(request, link, status=503, error=NOT_STORED)
        return _send_files(request, link)
    finally:
        arriving.discard_unsaved()


@csrf_protect
def _send_files(request: HttpRequest, link: UploadLink) -> HttpResponse:
    arrived = request.FILES.getlist("files")
    if not arrived:
        return _send_page(request, link, status=400, error="Choose at least one file.")
    # One window of each file in memory at a time: each is opened as intake reaches it.
    opened: list[WindowedBlob] = []

    def files():  # noqa: ANN202
        for upload in arrived:
            if opened:
                opened[-1].close()  # intake has moved on: its window goes
            opened.append(WindowedBlob(upload.stored))
            yield upload.name, opened[-1]

    try:
        received = intake.receive(link, files(), request=request)
    except intake.LinkClosed:
        link.refresh_from_db()
        services.record(Action.UPLOAD, link, request, outcome=Outcome.DENIED, reason="link_closed")
        return _unavailable(request, link)
    except StorageFailed:
        return _send_page(request, link, status=503, error=NOT_STORED)
    finally:
        for blob in opened:
            blob.close()
    sent = [r for r in received.rows if r.counts_as_received]
    link.refresh_from_db()  # what this send was charged: the room the page states
    return _send_page(request, link, just_sent=True, sent=len(sent), skipped=received.skipped,
                      max_files=settings.PORTAL_UPLOAD_LINK_MAX_FILES)  # fmt: skip
