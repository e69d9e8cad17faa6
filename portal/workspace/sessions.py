"""Staff session lifetime: idle and absolute timeouts, and ending sessions of deactivated users."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions.models import Session
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils import timezone

import audit
from audit.models import Action
from portal.access import member_of
from portal.workspace.session_store import forget_cached

AUTH_AT = "staff_auth_at"
SEEN_AT = "staff_seen_at"
# The last-seen stamp is rewritten only once it is this old, so most requests save no session.
# The stamp then trails real activity by less than this, so an idle sign-out can come up to
# this much early, never late.
SEEN_RESOLUTION_SECONDS = 30
# No idle limit is shorter (a practice sets whole minutes; 0 means the site default).
MIN_IDLE_SECONDS = 60


def _now() -> datetime:
    return timezone.now()


def idle_limit_seconds(user) -> int:
    """Return the user's idle timeout: their practice's setting, else the site default.

    A practice may shorten the site's limit, never lengthen it (a value stored before the
    limit, or written past the form, is held to it).
    """
    minutes = settings.STAFF_IDLE_TIMEOUT_MINUTES
    member = member_of(user)
    if member is not None and member.practice.idle_timeout_minutes:
        minutes = min(minutes, member.practice.idle_timeout_minutes)
    return int(minutes) * 60


def start(request: HttpRequest) -> None:
    """Mark the moment a staff session became fully signed in."""
    now = _now().timestamp()
    request.session[AUTH_AT] = now
    request.session[SEEN_AT] = now


def second_factor_passed(request: HttpRequest, device_kind: str) -> None:
    """Finish a sign-in after its second factor: new session key, fresh clocks, audit.

    The same for an authenticator code, a backup code and a passkey; the caller has already
    marked the session verified with django_otp.login.
    """
    request.session.cycle_key()
    start(request)
    audit.record(
        Action.SIGN_IN,
        request=request,
        user=request.user,
        practice=getattr(member_of(request.user), "practice", None),
        detail={"step": "otp", "device": device_kind},
    )


def expiry_reason(request: HttpRequest) -> str | None:
    """Return 'idle' or 'absolute' if the signed-in session has run out, else None."""
    session = request.session
    now = _now().timestamp()
    started, seen = session.get(AUTH_AT), session.get(SEEN_AT)
    if started is None or seen is None:
        start(request)
        return None
    if now - started > settings.STAFF_ABSOLUTE_SESSION_HOURS * 3600:
        return "absolute"
    idle = now - seen
    if idle > min(MIN_IDLE_SECONDS, settings.STAFF_IDLE_TIMEOUT_MINUTES * 60) and idle > (
        idle_limit_seconds(request.user)
    ):
        return "idle"
    if now - seen >= SEEN_RESOLUTION_SECONDS:
        session[SEEN_AT] = now
    return None


def staff_session_timeouts(get_response: Callable[[HttpRequest], HttpResponse]):
    """Sign staff out after inactivity or past the absolute session age, before any view runs."""

    def middleware(request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            reason = expiry_reason(request)
            if reason is not None:
                audit.record(
                    Action.SIGN_OUT,
                    request=request,
                    user=user,
                    practice=getattr(member_of(user), "practice", None),
                    detail={"reason": reason},
                )
                auth_logout(request)
                messages.info(
                    request,
                    "You were signed out after a period of inactivity. Sign in again; "
                    "nothing was changed."
                    if reason == "idle"
                    else "Your session reached its maximum age. Sign in again; "
                    "nothing was changed.",
                )
                if request.headers.get("Tus-Resumable") or request.headers.get(
                    "Accept", ""
                ).startswith("application/json"):
                    return HttpResponse("Signed out.", status=401, content_type="text/plain")
                return redirect_to_login(continue_after_sign_in(request))
        return get_response(request)

    return middleware


def continue_after_sign_in(request: HttpRequest) -> str:
    """Return where to go after signing in again: this page, or the page of this form.

    An address that carries a secret (any route with a token in it: share, upload and
    unlock links, setting a password) is never copied into the sign-in page's address.
    """
    if request.method != "GET":
        return page_of_form(request.path)
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return request.get_full_path()
    if any("token" in name for name in match.kwargs):
        return "/"
    return request.get_full_path()


def page_of_form(path: str) -> str:
    """Return the page a form posting to `path` lives on, to continue after signing in again.

    Action URLs answer POST only (/studies/<id>/share/, /shares/<id>/revoke/); their page is
    the nearest parent path the portal serves (the study, the list of links).
    """
    parts = [p for p in path.split("/") if p]
    while parts:
        parts.pop()
        candidate = "/" + "".join(f"{p}/" for p in parts)
        try:
            resolve(candidate)
        except Resolver404:
            continue
        return candidate
    return "/"


def end_sessions_of(user_id: int) -> int:
    """Delete every stored session that belongs to the user; return how many."""
    doomed = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user_id):
            doomed.append(session.pk)
    Session.objects.filter(pk__in=doomed).delete()
    forget_cached(doomed)
    return len(doomed)


@receiver(pre_save, sender=get_user_model())
def _note_deactivation(sender, instance, **kwargs) -> None:
    if instance.pk and not instance.is_active:
        was_active = sender.objects.filter(pk=instance.pk, is_active=True).exists()
        instance._ends_sessions = was_active


@receiver(post_save, sender=get_user_model())
def _end_sessions_on_deactivation(sender, instance, **kwargs) -> None:
    if getattr(instance, "_ends_sessions", False):
        instance._ends_sessions = False
        end_sessions_of(instance.pk)
