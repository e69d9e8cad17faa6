"""Mask share tokens in any log line that prints a request path."""

from __future__ import annotations

import logging
import re

_TOKEN_PATH = re.compile(r"/s/(?!home/|code/|end/|download/)[A-Za-z0-9_\-]{16,}")
MASK = "/s/<token>"
# A staff invitation's set-password address carries a token the same way.
_INVITE_PATH = re.compile(r"/login/set-password/[A-Za-z0-9_\-]+/(?!choose/)[A-Za-z0-9_\-]{8,}")
INVITE_MASK = "/login/set-password/<token>"


def mask_tokens(text: str) -> str:
    """Return text with every /s/<token> or invitation path replaced by a placeholder."""
    return _INVITE_PATH.sub(INVITE_MASK, _TOKEN_PATH.sub(MASK, text))


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
