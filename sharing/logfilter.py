"""Mask share tokens, DICOM UIDs and query strings in any log line that prints a request path.

A query string can say who was looked for (the back office's searches and pickers ask by
GET: ?q=<a patient's name>), so a request line keeps only that it had one.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

MASK = "/s/<token>"
# A staff invitation's set-password address carries a token the same way.
_INVITE_PATH = re.compile(
    r"/login/set-password/[A-Za-z0-9_\-]+/(?!choose/)[A-Za-z0-9_\-]{8,}", re.IGNORECASE
)
INVITE_MASK = "/login/set-password/<token>"
# So does an emailed link that lets a browser sign in despite a lockout.
_UNLOCK_PATH = re.compile(r"/login/unlock/[A-Za-z0-9_\-:.]{8,}", re.IGNORECASE)
UNLOCK_MASK = "/login/unlock/<token>"
# Any address may be spelled with percent-encoded characters (Django decodes the path, so
# /%73/<token> or /s/2c%43L9... opens the link), %2F for its slashes, encoded twice, or in
# capitals (a 404, but the token is as secret): each run of non-blank characters holding a
# slash or a percent sign is decoded, and masked in that form if it holds a token.
# An upload link's /u/<token> is masked the same way.
_RUN = re.compile(r"[^\s\"'<>]+")
_SHARE_REST = re.compile(r"/([su])/([^?&#]*)", re.IGNORECASE)
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# The recipient pages' own path segments (sharing/urls.py); any other segment may hold a
# token or part of one, and is masked whole.
_ROUTE_SEGMENT = re.compile(
    rf"|<token>|code|home|end|download|share\.zip|pictures\.zip|series|instances|attachments"
    rf"|software|tokens|revoke|{_UUID}(?:\.zip)?",
    re.IGNORECASE,
)
# The upload pages' own segments (sharing/uploads/urls.py).
_UPLOAD_SEGMENT = re.compile(r"|<token>|files", re.IGNORECASE)


# A request line as access logs print it: "GET /path?query HTTP/1.1". Everything from the
# "?" to the last protocol mark of the line goes, whatever it holds (a quote or a space in a
# malformed request); a line without one loses everything to its closing quote.
_QUERY_TO_PROTOCOL = re.compile(r'("[^\s"]+ [^?"]*)\?.*(?= HTTP/\d)')
_QUERY_TO_QUOTE = re.compile(r'("[^\s"]+ [^?"]*)\?[^"]*')
QUERY_MASK = "?<query>"


def _decoded(text: str) -> str:
    for _ in range(3):
        text, before = unquote(text), text
        if text == before:
            break
    return text


def _mask_rest(match: re.Match) -> str:
    prefix, segments = match[1], match[2].split("/")
    allowed = _ROUTE_SEGMENT if prefix.lower() == "s" else _UPLOAD_SEGMENT
    kept = [s if allowed.fullmatch(s) else "<token>" for s in segments]
    return f"/{prefix}/" + "/".join(kept)


# A DICOM UID in an address (DICOMweb's studies/<uid>/series/<uid>/...) names one patient's
# study as surely as an accession number: a path segment made of one (0, 1 or 2, then at least
# two more numbers, dot-separated: 2.25.<number> is one) is masked.
_UID_SEGMENT = re.compile(r"/[0-2](?:\.\d+){2,}(?=[/?#]|$)")
UID_MASK = "/<uid>"

# A decoded run is written back masked; an encoded line break in it must not become a real
# one (a forged log line), so control characters are encoded again.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _mask_run(match: re.Match) -> str:
    run = match[0]
    decoded = _decoded(run)
    masked = _SHARE_REST.sub(_mask_rest, decoded)
    masked = _UNLOCK_PATH.sub(UNLOCK_MASK, _INVITE_PATH.sub(INVITE_MASK, masked))
    masked = _UID_SEGMENT.sub(UID_MASK, masked)
    if masked == decoded:
        return run
    return _CONTROL.sub(lambda c: f"%{ord(c[0]):02X}", masked)


def mask_tokens(text: str) -> str:
    """Return text with every share token or invitation token replaced by a placeholder,
    DICOM UIDs in addresses too, and the query string of a request line."""
    if "?" in text:
        text, masked = _QUERY_TO_PROTOCOL.subn(rf"\1{QUERY_MASK}", text)
        if not masked:
            text = _QUERY_TO_QUOTE.sub(rf"\1{QUERY_MASK}", text)
    if "/" in text or "%" in text:
        text = _RUN.sub(_mask_run, text)
    return text


class MaskShareTokens(logging.Filter):
    """Rewrite a record's message so a share token never reaches a log handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        masked = mask_tokens(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


LOGGERS = (
    "django.request",
    "django.security",
    "django.server",
    "gunicorn.access",
    "gunicorn.error",
)


def install() -> None:
    """Attach the filter to the loggers that print request paths, and to the root handlers."""
    flt = MaskShareTokens()
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskShareTokens) for f in logger.filters):
            logger.addFilter(flt)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskShareTokens) for f in handler.filters):
            handler.addFilter(flt)
