"""Generic error pages: no stack trace, path or query ever reaches a user."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template import loader


def _page(status: int, title: str, message: str) -> HttpResponse:
    html = loader.render_to_string("error.html", {"title": title, "message": message})
    return HttpResponse(html, status=status)


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    return _page(400, "Bad request", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    return _page(403, "Not allowed", "You are not allowed to do that.")


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return _page(404, "Not found", "There is nothing here. Check the address you were given.")


def server_error(request: HttpRequest) -> HttpResponse:
    return _page(500, "Something went wrong", "Please try again in a moment.")
