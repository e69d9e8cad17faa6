"""Forms that issue a link act once: the same form posted again issues nothing more.

Each such form carries a random key. A reload of the page that showed the new link (the
browser posts the form again) or a double click arrives with the same key; the cache's
atomic add tells the first arrival from the others, across web processes and nodes.
"""

from __future__ import annotations

import secrets

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

FIELD = "issue_key"
# A form's key is remembered this long.
KEY_SECONDS = 24 * 3600


def new_key() -> str:
    return secrets.token_urlsafe(16)


def _cache_key(request: HttpRequest, key: str) -> str:
    return f"issue-form:{request.user.pk}:{key}"


def first_time(request: HttpRequest, key: str) -> bool:
    """Return whether this is the first arrival of the form with this key (no key: always)."""
    return not key or cache.add(_cache_key(request, key), True, KEY_SECONDS)


def forget(request: HttpRequest, key: str) -> None:
    """Nothing was issued after all (refused): the corrected form may be sent again."""
    if key:
        cache.delete(_cache_key(request, key))


def already_issued(request: HttpRequest, links_url: str, back_url: str) -> HttpResponse:
    """The answer to a form sent again: nothing more was issued, and the secret is not shown."""
    context = {"links_url": links_url, "back_url": back_url}
    response = render(request, "portal/already_issued.html", context, status=409)
    response.headers["Cache-Control"] = "no-store"
    return response
