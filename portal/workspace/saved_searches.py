"""A search's criteria, carried to the results page it redirects to: sealed, in its address.

Searches are POSTed so that names and birth dates never sit in a URL in plain form (the
browser's history on a shared front-desk computer, a proxy's log). Answering the POST with
the results made Back from a result a "Confirm Form Resubmission" error page, so the POST
redirects to /?results=<sealed criteria>: the results, their pager and Back are plain GETs.
The criteria are sealed (AES-256-GCM) with the vault's key-encryption key, bound to the staff
member, and open for KEEP_SECONDS: the address names nobody, and opens for nobody else.

They were first kept in the session under a random reference; a thumbnail request that read
the session before the search and saved it after wrote it back without them ("search again").
"""

from __future__ import annotations

import json
import time

from django.http import HttpRequest

from portal.vault import values
from portal.vault.crypto import VaultIntegrityError

# A results page (a bookmark, the browser's history) opens for a working day.
KEEP_SECONDS = 12 * 3600
CLOCK_SKEW = 300


def _binding(user_id: int):  # noqa: ANN202
    return lambda key_id: f"portal-search|{key_id}|{user_id}".encode()


def save(request: HttpRequest, criteria: dict[str, str]) -> str:
    """Return criteria (field name to the text typed) sealed for this staff member's address."""
    typed = {name: text for name, text in criteria.items() if text}  # a shorter address
    kept = json.dumps({"criteria": typed, "at": int(time.time())}).encode()
    return values.seal_value(kept, _binding(request.user.pk))


def load(request: HttpRequest, ref: str) -> dict[str, str] | None:
    """Return the criteria sealed in ref, or None (damaged, too old, or not this user's)."""
    try:
        kept = json.loads(values.open_value(ref, _binding(request.user.pk)))
    except (VaultIntegrityError, ValueError):
        return None
    if not isinstance(kept, dict):
        return None
    at, criteria = kept.get("at"), kept.get("criteria")
    # A little ahead is another web host's clock, not a forgery (the seal vouches for it).
    if not isinstance(at, int) or not -CLOCK_SKEW <= time.time() - at <= KEEP_SECONDS:
        return None
    return criteria if isinstance(criteria, dict) else None
