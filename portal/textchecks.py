"""Refuse control characters in the names and texts people type or send.

A NUL byte cannot be stored in PostgreSQL text (it answered 500); escape sequences, line
breaks in a name and bidi overrides (which turn "photo\\u202egpj.exe" into "photoexe.jpg" on
screen) can disguise what a name says in a page, a file name or a log line.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError

MESSAGE = (
    "Remove the invisible control characters (such as a tab, a line break, a NUL byte or a "
    "text-direction mark) from this text, then try again."
)
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _is_control(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI_CONTROLS


def has_control_characters(text: str) -> bool:
    """Return whether text holds a control, line or paragraph separator, or bidi character."""
    return any(_is_control(c) for c in text)


def without_control_characters(text: str) -> str:
    """Return text with each such character made a space: for texts a device wrote, where
    an odd byte is no reason to refuse an image."""
    if not has_control_characters(text):
        return text
    return " ".join("".join(" " if _is_control(c) else c for c in text).split())


def refuse_control_characters(value: str) -> None:
    """Validator for form fields and model fields holding names and short texts."""
    if value and has_control_characters(value):
        raise ValidationError(MESSAGE, code="control_characters")
