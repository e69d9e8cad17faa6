"""Why a file is refused, or why more of it must be read."""

from __future__ import annotations


class Rejected(Exception):
    """The file is refused; the message is a one-line reason without patient data."""


class NeedMore(Exception):
    """The header runs past the bytes read so far."""
