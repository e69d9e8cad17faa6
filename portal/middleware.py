"""Headers every dynamic response carries; static files are served before this by whitenoise."""

from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils.html import escape
from django_otp.middleware import OTPMiddleware as BaseOTPMiddleware
from django_otp.models import Device


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
        from portal.access import fetch_row

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
        return resolve(path).view_name == "sharing:open"
    except Resolver404:
        return False
