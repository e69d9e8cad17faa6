"""Headers every dynamic response carries; static files are served before this by whitenoise."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


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
