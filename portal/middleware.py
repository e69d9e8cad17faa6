"""Headers every dynamic response carries; static files are served before this by whitenoise."""

from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.http import HttpRequest, HttpResponse
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
