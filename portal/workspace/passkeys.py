"""Passkeys (WebAuthn, through django-otp-webauthn) as an optional second factor.

The authenticator app stays the factor every staff account enrols first; a passkey is added
afterwards from the account page and can then stand in for the 6-digit code at sign-in. The
library's ceremony views are wrapped so that a passkey sign-in is the same sign-in as a code
(fresh session key, session clock, audit record), and only a fully signed-in staff member
may add one.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from django.urls import path
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import exceptions
from django_otp_webauthn import views as webauthn
from django_otp_webauthn.models import WebAuthnCredential

import audit
from audit.models import Action, Outcome
from portal.access import member_of
from portal.workspace import sessions, signin_throttle


def available(request: HttpRequest) -> bool:
    """Whether this page's address may use passkeys: its host is the relying party's domain.

    Browsers refuse passkeys on an IP address such as 127.0.0.1, and on any host the
    relying party ID does not cover, so the portal does not offer them there.
    """
    rp_id = settings.OTP_WEBAUTHN_RP_ID
    host = urlsplit(f"//{request.get_host()}").hostname or ""
    origin = f"{request.scheme}://{request.get_host()}"
    return (
        bool(rp_id)
        and (host == rp_id or host.endswith(f".{rp_id}"))
        and (origin in settings.OTP_WEBAUTHN_ALLOWED_ORIGINS)
    )


def for_user(user) -> list[WebAuthnCredential]:
    return list(WebAuthnCredential.objects.filter(user=user).order_by("created_at"))


class NotStaff(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_detail = "Sign in with your authenticator app first, then add a passkey."
    default_code = "not_signed_in"


def _require_signed_in_staff(request: HttpRequest) -> None:
    """Only a member who passed the authenticator code adds a passkey, never a password alone."""
    if not request.user.is_verified() or member_of(request.user) is None:
        raise NotStaff()


class BeginRegistration(webauthn.BeginCredentialRegistrationView):
    def check_can_register(self) -> None:
        _require_signed_in_staff(self.request)


class CompleteRegistration(webauthn.CompleteCredentialRegistrationView):
    def check_can_register(self) -> None:
        _require_signed_in_staff(self.request)

    def post(self, *args, **kwargs):
        response = super().post(*args, **kwargs)
        if response.status_code == 200:
            user = self.request.user
            audit.record(
                Action.STAFF_CHANGE,
                request=self.request,
                user=user,
                practice=getattr(member_of(user), "practice", None),
                detail={"member": user.pk, "change": "passkey added"},
            )
        return response


class AlreadySignedIn(exceptions.OTPWebAuthnApiError):
    status_code = 409
    default_detail = "You are already signed in."
    default_code = "already_signed_in"


class CompleteAuthentication(webauthn.CompleteCredentialAuthenticationView):
    """A passkey after the password: the same completion as an authenticator code.

    A session that is already fully signed in is refused: touching a passkey must not
    restart the session's clock and so outlive its maximum age without the password.
    Every refusal is audited like a wrong code.
    """

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if request.user.is_authenticated and request.user.is_verified():
            raise AlreadySignedIn()

    def handle_exception(self, exc):
        if isinstance(exc, exceptions.OTPWebAuthnApiError):
            user = self.request.user if self.request.user.is_authenticated else None
            audit.record(
                Action.SIGN_IN,
                request=self.request,
                user=user,
                practice=getattr(member_of(user), "practice", None) if user else None,
                outcome=Outcome.FAILED,
                detail={"step": "otp", "device": "passkey", "reason": exc.code},
            )
        return super().handle_exception(exc)

    def complete_auth(self, device: WebAuthnCredential) -> None:
        request = self.request
        if not request.user.is_authenticated or device.user_id != request.user.pk:
            raise exceptions.CredentialUserMismatch()
        super().complete_auth(device)
        sessions.second_factor_passed(request, "passkey")

    def post(self, *args, **kwargs):
        response = super().post(*args, **kwargs)
        # This browser is now one its owner signs in from, as after a code: a stranger's
        # lockout of the username spares it (portal.workspace.signin_throttle).
        if self.request.user.is_authenticated and self.request.user.is_verified():
            signin_throttle.remember_device(
                self.request, response, self.request.user.get_username()
            )
        return response


app_name = "otp_webauthn"

urlpatterns = [
    path(
        "registration/begin/",
        BeginRegistration.as_view(),
        name="credential-registration-begin",
    ),
    path(
        "registration/complete/",
        CompleteRegistration.as_view(),
        name="credential-registration-complete",
    ),
    path(
        "authentication/begin/",
        webauthn.BeginCredentialAuthenticationView.as_view(),
        name="credential-authentication-begin",
    ),
    path(
        "authentication/complete/",
        CompleteAuthentication.as_view(),
        name="credential-authentication-complete",
    ),
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
        name="js-i18n-catalog",
    ),
]
