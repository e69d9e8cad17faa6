"""Staff sign-in: password, then an authenticator code; enrolment at first sign-in."""

from __future__ import annotations

import base64
import math

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.views import PasswordResetConfirmView
from django.core.mail import send_mail
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse, reverse_lazy
from django.utils.encoding import force_bytes
from django.utils.http import url_has_allowed_host_and_scheme, urlsafe_base64_encode
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

import audit
from audit.models import Action, Outcome
from audit.services import client_ip
from portal.access import deny
from portal.models import BackupCodeDevice
from portal.textchecks import has_control_characters
from portal.workspace import passkeys, sessions, signin_throttle
from portal.workspace.decorators import staff_required
from portal.workspace.forms import SignInForm, TokenForm

BACKUP_CODES = 10


def _next_url(request: HttpRequest) -> str:
    """Return the safe local address to continue to after sign-in."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


def _with_next(name: str, request: HttpRequest) -> str:
    from urllib.parse import urlencode

    from django.urls import reverse

    return f"{reverse(name)}?{urlencode({'next': _next_url(request)})}"


def _practice(user):
    member = getattr(user, "staffmember", None)
    return member.practice if member is not None else None


@sensitive_post_parameters()
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    """Check username and password (portal.workspace.signin_throttle), then the second factor."""
    user = request.user
    if user.is_authenticated and user.is_verified():
        return redirect(_next_url(request))
    if user.is_authenticated:
        return redirect(_with_next("portal:verify", request))
    form = SignInForm(request, data=request.POST if request.method == "POST" else None)
    if request.method == "POST":
        username = request.POST.get("username", "")[:150]
        if has_control_characters(username):
            form.is_valid()  # the field says why; nothing to count or look up
            return render(request, "portal/login.html", {"form": form, "next": _next_url(request)})
        address = client_ip(request)
        verdict = signin_throttle.check(request, username, address)
        if not verdict.retry_after and not signin_throttle.reserve(
            username, address, verdict.device
        ):
            # Others sent at the same moment took the last tries of the window.
            wait = max(1, signin_throttle.check(request, username, address).retry_after)
            verdict = signin_throttle.Verdict(wait, verdict.device)
        if verdict.retry_after:
            audit.record(
                Action.SIGN_IN,
                request=request,
                outcome=Outcome.DENIED,
                detail={"step": "password", "locked": True},
            )
            minutes = math.ceil(verdict.retry_after / 60)
            context = {"username": username, "minutes": minutes}
            response = render(request, "portal/locked.html", context, status=429)
            response["Retry-After"] = str(verdict.retry_after)
            return response
        if form.is_valid():
            signin_throttle.clear_after_success(username, address, verdict.device)
            auth_login(request, form.get_user())  # cycles the session key
            if user_has_device(request.user):
                return redirect(_with_next("portal:verify", request))
            return redirect(_with_next("portal:enroll", request))
        audit.record(
            Action.SIGN_IN, request=request, outcome=Outcome.FAILED, detail={"step": "password"}
        )
    return render(request, "portal/login.html", {"form": form, "next": _next_url(request)})


@csrf_protect
@never_cache
@require_POST
def request_unlock(request: HttpRequest) -> HttpResponse:
    """Email an account's owner a link that lets this browser sign in despite a lockout.

    The answer is the same whether or not the username exists or has an email address.
    """
    username = request.POST.get("username", "")[:150]
    if not has_control_characters(username) and signin_throttle.may_send_unlock_mail(username):
        owner = User.objects.filter(
            username__iexact=username.strip(), is_active=True, email__gt=""
        ).first()
        if owner is not None:
            token = signin_throttle.unlock_token(owner)
            url = settings.PORTAL_BASE_URL.rstrip("/") + reverse("portal:unlock", args=[token])
            context = {"user": owner, "url": url, "minutes": 30}
            subject = render_to_string("emails/signin-unlock-subject.txt", context).strip()
            body = render_to_string("emails/signin-unlock-body.txt", context)
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [owner.email])
            audit.record(
                Action.SIGN_IN,
                request=request,
                user=owner,
                practice=_practice(owner),
                outcome=Outcome.DENIED,
                detail={"step": "unlock_mail"},
            )
    return render(request, "portal/unlock_sent.html", {"username": username})


@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def unlock(request: HttpRequest, token: str) -> HttpResponse:
    """Confirm an emailed unlock link (a GET consumes nothing: mail scanners follow links)."""
    user_id = signin_throttle.redeem_unlock_token(token, consume=request.method == "POST")
    owner = User.objects.filter(pk=user_id, is_active=True).first() if user_id else None
    if owner is None:
        return render(request, "portal/unlock.html", {"valid": False}, status=410)
    if request.method == "GET":
        return render(request, "portal/unlock.html", {"valid": True, "owner": owner})
    audit.record(
        Action.SIGN_IN,
        request=request,
        user=owner,
        practice=_practice(owner),
        detail={"step": "unlock_link"},
    )
    messages.success(request, f"This browser may sign in as {owner.get_username()} now.")
    response = redirect("portal:login")
    signin_throttle.remember_device(request, response, owner.get_username())
    return response


@sensitive_post_parameters()
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """Accept a TOTP or backup code; a wrong or already used code is refused."""
    user = request.user
    if not user.is_authenticated:
        return redirect(_with_next("portal:login", request))
    if user.is_verified():
        return redirect(_next_url(request))
    if not user_has_device(user):
        return redirect(_with_next("portal:enroll", request))
    form = TokenForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["token"]
        for device in devices_for_user(user, confirmed=True):
            if device.verify_token(token):
                return _complete_sign_in(request, device)
        audit.record(
            Action.SIGN_IN,
            request=request,
            user=user,
            practice=_practice(user),
            outcome=Outcome.FAILED,
            detail={"step": "otp"},
        )
        form.add_error("token", "That code is wrong or was already used. Try the next code.")
    context = {
        "form": form,
        "next": _next_url(request),
        "offer_passkey": passkeys.available(request)
        and WebAuthnCredential.objects.filter(user=user, confirmed=True).exists(),
    }
    return render(request, "portal/verify.html", context)


def _complete_sign_in(request: HttpRequest, device) -> HttpResponse:
    otp_login(request, device)
    sessions.second_factor_passed(request, device.__class__.__name__.lower())
    response = redirect(_next_url(request))
    # This browser is now one its owner signs in from: a stranger's lockout spares it.
    signin_throttle.remember_device(request, response, request.user.get_username())
    return response


@sensitive_post_parameters()
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def enroll(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app with a QR code, then show single-use backup codes once."""
    user = request.user
    if not user.is_authenticated:
        return redirect(_with_next("portal:login", request))
    if user_has_device(user):
        return redirect(_with_next("portal:verify", request))
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    form = TokenForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            codes = _make_backup_codes(user)
            _complete_sign_in(request, device)
            return render(
                request, "portal/backup_codes.html", {"codes": codes, "next": _next_url(request)}
            )
        form.add_error("token", "That code did not match. Check the clock of your phone.")
    context = {
        "form": form,
        "next": _next_url(request),
        "qr_svg": segno.make(device.config_url, error="m").svg_inline(
            scale=5, dark="#000", light="#fff", title="Authenticator set-up code"
        ),
        "secret": base64.b32encode(device.bin_key).decode().rstrip("="),
        "issuer": settings.OTP_TOTP_ISSUER,
    }
    return render(request, "portal/enroll.html", context)


def _make_backup_codes(user) -> list[str]:
    BackupCodeDevice.objects.filter(user=user).delete()
    device = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    return device.issue_codes(BACKUP_CODES)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """Sign out and forget the session."""
    if request.user.is_authenticated:
        audit.record(
            Action.SIGN_OUT,
            request=request,
            user=request.user,
            practice=_practice(request.user),
            detail={"reason": "user"},
        )
    auth_logout(request)
    messages.success(request, "You are signed out.")
    return redirect("portal:login")


class SetPassword(PasswordResetConfirmView):
    """A new staff member chooses their password from the link in their invitation email.

    Django's view moves the link's token into the session and redirects, so the token is
    in one URL, once. The authenticator is set up at the first sign-in that follows.
    """

    template_name = "portal/set_password.html"
    success_url = reverse_lazy("portal:login")
    reset_url_token = "choose"  # noqa: S105 - a path segment, not a secret

    def form_valid(self, form):
        response = super().form_valid(form)
        audit.record(
            Action.STAFF_CHANGE,
            request=self.request,
            user=form.user,
            practice=_practice(form.user),
            detail={"member": form.user.pk, "change": "password chosen"},
        )
        messages.success(self.request, "Password saved. Sign in to set up your authenticator.")
        return response


set_password = SetPassword.as_view()


def invitation_url(user) -> str:
    """Return the one-time address where a new member chooses a password (valid 3 days)."""
    path = reverse(
        "portal:set-password",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return settings.PORTAL_BASE_URL.rstrip("/") + path


@require_GET
@staff_required
def account(request: HttpRequest) -> HttpResponse:
    """The signed-in member's own sign-in methods: the authenticator app and passkeys."""
    context = {
        "passkeys": passkeys.for_user(request.user),
        "passkeys_available": passkeys.available(request),
        "passkey_origin": (settings.OTP_WEBAUTHN_ALLOWED_ORIGINS or [""])[0],
    }
    return render(request, "portal/account.html", context)


@require_POST
@staff_required
def remove_passkey(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove one of the member's own passkeys; the authenticator app still works."""
    removed, _ = WebAuthnCredential.objects.filter(pk=pk, user=request.user).delete()
    if not removed:
        raise deny(request, request.scope, "passkey")
    audit.record(
        Action.STAFF_CHANGE,
        request=request,
        detail={"member": request.user.pk, "change": "passkey removed"},
        **request.scope.audit_kwargs(),
    )
    messages.success(request, "The passkey is removed.")
    return redirect("portal:account")
