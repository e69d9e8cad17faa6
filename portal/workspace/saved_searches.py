"""A search's criteria, kept for the results page it redirects to: sealed, never in a URL.

Searches are POSTed so that names and birth dates never sit in a URL (the browser's history
on a shared front-desk computer, a proxy's log). Answering the POST with the results made
Back from a result a "Confirm Form Resubmission" error page. The POST now keeps the criteria
in the session under a random reference and redirects to /?results=<reference>: the results,
their pager and Back are plain GETs. Sessions are stored in the database and the cache, where
no plaintext patient data may sit, so the criteria are sealed (AES-256-GCM) with the vault's
key-encryption key, bound to the staff member and the reference.
"""

from __future__ import annotations

import json
import secrets

from django.http import HttpRequest

from portal.vault import values
from portal.vault.crypto import VaultIntegrityError

SESSION_KEY = "searches"
KEEP = 10  # a staff member's latest searches stay reachable by Back


def _binding(user_id: int, ref: str):  # noqa: ANN202
    return lambda key_id: f"portal-search|{key_id}|{user_id}|{ref}".encode()


def save(request: HttpRequest, criteria: dict[str, str]) -> str:
    """Keep criteria (field name to the text typed) sealed in the session; return its reference."""
    ref = secrets.token_urlsafe(9)
    sealed = values.seal_value(json.dumps(criteria).encode(), _binding(request.user.pk, ref))
    kept = dict(request.session.get(SESSION_KEY, {}))
    kept[ref] = sealed
    request.session[SESSION_KEY] = dict(list(kept.items())[-KEEP:])
    return ref


def load(request: HttpRequest, ref: str) -> dict[str, str] | None:
    """Return the criteria kept under ref, or None (unknown, too old, or not this user's)."""
    value = request.session.get(SESSION_KEY, {}).get(ref)
    if not isinstance(value, str):
        return None
    try:
        criteria = json.loads(values.open_value(value, _binding(request.user.pk, ref)))
    except (VaultIntegrityError, ValueError):
        return None
    return criteria if isinstance(criteria, dict) else None
