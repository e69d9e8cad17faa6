"""Sizes as people write them: '512 MB', '1.5 GB', '37 KB' (in 1024s, as the browser's)."""

from __future__ import annotations

from django.template.defaultfilters import filesizeformat


def file_size(value: int | float | None) -> str:
    """Django's filesizeformat without a trailing '.0' ('512.0 MB' reads like a measurement)."""
    return filesizeformat(value).replace(".0\xa0", "\xa0")
