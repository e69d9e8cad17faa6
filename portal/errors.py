"""Generic error pages: no stack trace, path or query ever reaches a user."""

from __future__ import annotations

import logging
import sys
import time

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template import loader

from portal.request_bodies import BodyTooSlow


def _page(status: int, title: str, message: str) -> HttpResponse:
    html = loader.render_to_string("error.html", {"title": title, "message": message})
    return HttpResponse(html, status=status)


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    if isinstance(exception, BodyTooSlow):
        return _page(
            408,
            "The upload stopped",
            "What you sent stopped arriving, or arrived too slowly to finish. Check the "
            "connection and send it again.",
        )
    return _page(400, "Bad request", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    return _page(403, "Not allowed", "You are not allowed to do that.")


# Where a recipient's or a sender's visit ends up once it has ended (closed, timed out, Back
# after leaving), and what each is told.
VISIT_ENDED = {
    "/s/": "If you were sent a link to your images, your visit may have ended: open the link "
    "again from your email or the printed handout, or call the practice.",
    "/u/": "If you were sent a link to send images to a practice, your visit may have ended: "
    "open the link again from the email or message it came in, or call the practice.",
}


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    ended = VISIT_ENDED.get(request.path[:3])
    if ended:
        return _page(404, "Nothing to show here", ended)
    return _page(404, "Not found", "There is nothing here. Check the address you were given.")


def server_error(request: HttpRequest) -> HttpResponse:
    # Called while the exception is being handled: a database that is restarting or out of
    # reach is said as such (503, retry shortly), not as a fault of the portal.
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        response = _page(
            503,
            "Briefly unavailable",
            "The portal cannot reach its database just now. Try again in a minute.",
        )
        response["Retry-After"] = "30"
        return response
    return _page(500, "Something went wrong", "Please try again in a moment.")


class OneLineForOutages(logging.Filter):
    """Log a request failed by an unreachable database in one line, not a traceback each.

    During a database restart every request fails the same way; the operator needs to know
    that it happened and when, not hundreds of identical stack traces.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, OperationalError | InterfaceError):
            record.msg = "%s: database unavailable (%s)"
            record.args = (record.getMessage().split(":", 1)[0], type(exc).__name__)
            record.exc_info = record.exc_text = None
        return True


class QuietLibrary(logging.Filter):
    """A library's lines about strangers' input: no traceback, each kind at most once a minute.

    pynetdicom logs every undecodable or cut-short PDU with its stack, a few lines per
    stranger's connection (the receiver logs its own refusals, counted); Django's security
    checks log each hostile request (too many fields, a bad Host) with its stack.
    """

    every = 60.0

    def __init__(self) -> None:
        super().__init__()
        self._told: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = record.exc_text = None
        record.stack_info = None
        # A message, or for an exception logged as such its type (each is a new object).
        # Django's security messages quote the request (a bad Host): its logger names the kind.
        what = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        key = (record.name, "" if record.name.startswith("django.security") else what)
        now = time.monotonic()
        if now - self._told.get(key, -self.every) < self.every:
            return False
        if len(self._told) > 1000:
            self._told.clear()
        self._told[key] = now
        return True
