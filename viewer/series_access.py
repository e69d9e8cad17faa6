"""Who may see a series or attachment, and what the viewer's requests share: the owner
check, loading, audit once per session, the window parameters and no-store answers.

Used by the page and manifest views (viewer.views), the slice and dental renders and the
picture downloads, so each decides access the same way.
"""

from __future__ import annotations

import math
from typing import Any
from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse

import audit
from portal.access import (
    Scope,
    SeriesOwner,
    deny,
    fetch_or_404,
    scope_and_series_owner,
    scope_for,
    series_owner_or_404,
)
from portal.models import Attachment, Series

SEEN_KEY = "viewer_seen"
MAX_SEEN = 500
FORMATS = {"jpeg": "image/jpeg", "png": "image/png"}


def no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, private"
    return response


def pixel_scope(request: HttpRequest) -> Scope | None:
    """Return the scope if it may see pixels; None makes fetch_or_404 deny and audit."""
    scope = scope_for(request)
    if scope is not None and not scope.can_view_pixels:
        return None
    return scope


def fetch_attachment(request: HttpRequest, scope: Scope | None, code: UUID) -> Any:
    """Fetch an attachment through the scope, or audit the denial and raise 404."""
    if scope is None:
        return fetch_or_404(request, scope_for(request), Attachment.objects.none(), code=code)
    return fetch_or_404(request, scope, scope.attachments().select_related("blob"), code=code)


def series_owner(request: HttpRequest, code: UUID) -> tuple[Scope, SeriesOwner]:
    """Decide access to a series from its owner row, or audit the denial and raise 404.

    One small query instead of the scope's nested querysets: a warm slice costs less than
    building them would.
    """
    scope, owner = scope_and_series_owner(request, code)
    if scope is None or not scope.can_view_pixels:
        raise deny(request, scope, "series")
    return scope, series_owner_or_404(request, scope, code, owner)


def load_series(owner: SeriesOwner) -> Series:
    """Load an allowed series with its study and patient (for audit, previews, manifests)."""
    series = Series.objects.select_related("study__patient").filter(pk=owner.pk).first()
    if series is None:  # shredded between the decision and now
        raise Http404
    return series


def audit_once(request: HttpRequest, scope: Scope, action: str, obj: Any, key: str) -> None:
    """Audit the first view of an object by this link or staff member in this session."""
    if seen(request, scope, key):
        return
    patient = None if scope.share is not None else _patient_of(obj)
    audit.record(action, request=request, patient=patient, obj=obj, **scope.audit_kwargs())
    remember(request, scope, key)


def _seen_key(scope: Scope, key: str) -> str:
    # Keyed by who looks: a second link opened, or another user signed in, in the same
    # browser session is audited afresh.
    who = f"share{scope.share.pk}" if scope.share is not None else f"staff{scope.staff.pk}"
    return f"{who}:{key}"


def seen(request: HttpRequest, scope: Scope, key: str) -> bool:
    return _seen_key(scope, key) in request.session.get(SEEN_KEY, [])


def remember(request: HttpRequest, scope: Scope, key: str) -> None:
    seen = request.session.get(SEEN_KEY, [])
    request.session[SEEN_KEY] = [*seen, _seen_key(scope, key)][-MAX_SEEN:]


def _patient_of(obj: Any) -> Any:
    if isinstance(obj, Series):
        return obj.study.patient
    return obj.patient


def window_from_query(request: HttpRequest) -> tuple[float | None, float | None, bool]:
    """Parse ?c=&w=&invert=; raise ValueError on anything but finite numbers and flags."""
    center = request.GET.get("c")
    width = request.GET.get("w")
    c = float(center) if center not in (None, "") else None
    w = float(width) if width not in (None, "") else None
    for value in (c, w):
        if value is not None and (not math.isfinite(value) or abs(value) > 1e7):
            raise ValueError("window out of range")
    if w is not None and w < 1:
        raise ValueError("window width below 1")
    invert = request.GET.get("invert", "0")
    if invert not in ("0", "1", "true", "false"):
        raise ValueError("invert must be 0 or 1")
    return c, w, invert in ("1", "true")
