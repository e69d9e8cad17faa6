"""Headers every dynamic response carries; static files are served before this by whitenoise."""

from __future__ import annotations

import functools
from collections.abc import Callable

from auditlog.middleware import AuditlogMiddleware as BaseAuditlogMiddleware
from csp.constants import HEADER as CSP_HEADER
from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.utils import build_policy
from django.apps import apps
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils.html import escape
from django_otp.middleware import OTPMiddleware as BaseOTPMiddleware
from django_otp.models import Device


def health_checks(get_response: Callable[[HttpRequest], HttpResponse]):
    """Answer /healthz and /readyz before anything else runs.

    A container's HEALTHCHECK and a load balancer ask over plain HTTP with their own Host
    header: these answers must not depend on ALLOWED_HOSTS, the HTTPS redirect, sessions or
    the audit trail, and carry nothing but check names and states.
    """
    from portal import health

    answers = {"/healthz": health.healthz, "/readyz": health.readyz}

    def middleware(request: HttpRequest) -> HttpResponse:
        answer = answers.get(request.path_info)
        if answer is not None and request.method in ("GET", "HEAD"):
            return answer()
        return get_response(request)

    return middleware


NUL_REFUSED = "The request holds a NUL byte, which no name, code or text may contain."


def refuse_nul_bytes(get_response: Callable[[HttpRequest], HttpResponse]):
    """Answer 400 to an address, query or typed form holding a NUL byte, before any view.

    PostgreSQL text cannot store one (such requests answered 500), and nothing people type
    or links carry has one. Uploaded files' bodies are not looked at here.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        values = [request.path, *request.GET.keys(), *request.GET.values()]
        if request.content_type == "application/x-www-form-urlencoded":
            values += [*request.POST.keys(), *request.POST.values()]
        if any("\x00" in value for value in values):
            return HttpResponse(NUL_REFUSED, status=400, content_type="text/plain")
        return get_response(request)

    return middleware


def security_headers(get_response: Callable[[HttpRequest], HttpResponse]):
    """Add no-store and noindex to every page: almost every page shows patient data."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return middleware


def same_origin_fetch_metadata(get_response: Callable[[HttpRequest], HttpResponse]):
    """Let same-origin form posts from no-referrer pages through the CSRF origin check.

    Under `Referrer-Policy: no-referrer` (required on share pages) browsers send `Origin: null`
    on every form post. Browsers also send `Sec-Fetch-Site`, which no page script can forge;
    when it says same-origin, the request's own origin is restored before CsrfViewMiddleware
    runs. The CSRF token is still checked as usual.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        if (
            request.META.get("HTTP_ORIGIN") == "null"
            and request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin"
        ):
            request.META["HTTP_ORIGIN"] = f"{request.scheme}://{request.get_host()}"
        return get_response(request)

    return middleware


class OTPMiddleware(BaseOTPMiddleware):
    """django-otp's middleware, loading the session's device without the ORM compiler.

    It runs on every staff request; the query is the same one django-otp would build.
    """

    def _device_from_persistent_id(self, persistent_id: str) -> Device | None:
        from portal.rows import fetch_row

        try:
            label, device_id = self._normalize_persistent_id(persistent_id).rsplit("/", 1)
            model = apps.get_model(label)
        except (ValueError, LookupError):
            return None
        if not issubclass(model, Device):
            return None
        try:
            return fetch_row(model, model._meta.pk.name, device_id)
        except (TypeError, ValueError):
            return None


_BOUNCE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="0;url={url}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Opening the portal</title></head>
<body><p>Opening the portal… <a href="{url}">Continue</a></p></body></html>
"""


def cross_site_navigation_bounce(get_response: Callable[[HttpRequest], HttpResponse]):
    """Re-open a page followed from another site, so the SameSite=Strict session cookie comes.

    A browser withholds a Strict cookie on a navigation that started on another site, such
    as a share link clicked in webmail (including the 303 hop after /s/<token>) or a
    bookmark in a chat app. Such a request arrives without the session; answering it with a
    page that reloads the same address makes the next request same-site, and the cookie is
    sent. Only the token URL itself is not repeated: it sets the cookie and redirects.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        meta = request.META
        if (
            request.method in ("GET", "HEAD")
            and meta.get("HTTP_SEC_FETCH_SITE") == "cross-site"
            and meta.get("HTTP_SEC_FETCH_MODE") == "navigate"
            and settings.SESSION_COOKIE_NAME not in request.COOKIES
            and not _is_share_token_url(request.path_info)
        ):
            # One leading slash only: "//host/..." would be another site's address.
            url = "/" + request.get_full_path().lstrip("/")
            response = HttpResponse(_BOUNCE_PAGE.format(url=escape(url)))
            response.headers["Cache-Control"] = "no-store"
            return response
        return get_response(request)

    return middleware


def _is_share_token_url(path: str) -> bool:
    try:
        return resolve(path).view_name in ("sharing:open", "uploads:open")
    except Resolver404:
        return False


@functools.cache
def _site_policy() -> str:
    return build_policy()


@receiver(setting_changed)
def _policy_changed(setting: str, **kwargs) -> None:
    if setting == "CONTENT_SECURITY_POLICY":
        _site_policy.cache_clear()


_PER_RESPONSE_POLICY = ("_csp_config", "_csp_update", "_csp_replace", "_csp_exempt")


class CSPMiddleware(BaseCSPMiddleware):
    """django-csp's middleware, with the site-wide policy built once instead of per response.

    Responses that change the policy (csp_replace and friends) or use a nonce still go through
    django-csp's own per-response building.
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if (
            CSP_HEADER in response
            or getattr(request, "_csp_nonce", None) is not None
            or any(hasattr(response, name) for name in _PER_RESPONSE_POLICY)
            or getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
        ):
            return super().process_response(request, response)
        policy = _site_policy()
        if policy:
            response[CSP_HEADER] = policy
        return response


class AuditlogMiddleware(BaseAuditlogMiddleware):
    """django-auditlog's middleware (who changed a BAA, a user, a link's settings), on writes only.

    The records it names an actor for are only ever saved by POSTs; the context it sets up costs
    more than a cached image on every GET.
    """

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return self.get_response(request)
        return super().__call__(request)
