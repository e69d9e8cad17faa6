"""Viewer endpoints: the page, series manifests, rendered slices, thumbnails and attachments.

Every view fetches through portal.access; pixels additionally need Scope.can_view_pixels.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote
from uuid import UUID

from csp.decorators import csp_replace
from django.contrib.auth.views import redirect_to_login
from django.db.models import Q
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET

import audit
from audit.models import Action
from portal import vault
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
from sharing.session import pending_code
from viewer import layouts, mpr, objects, presets, previews, tags
from viewer import render as rendering

SEEN_KEY = "viewer_seen"
MAX_SEEN = 500
INLINE_TYPES = {"image/jpeg", "image/png", "image/webp", "application/pdf"}
FORMATS = {"jpeg": "image/jpeg", "png": "image/png"}


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, private"
    return response


def _pixel_scope(request: HttpRequest) -> Scope | None:
    """Return the scope if it may see pixels; None makes fetch_or_404 deny and audit."""
    scope = scope_for(request)
    if scope is not None and not scope.can_view_pixels:
        return None
    return scope


def _fetch(request: HttpRequest, scope: Scope | None, code: UUID) -> Any:
    """Fetch an attachment through the scope, or audit the denial and raise 404."""
    if scope is None:
        return fetch_or_404(request, scope_for(request), Attachment.objects.none(), code=code)
    return fetch_or_404(request, scope, scope.attachments().select_related("blob"), code=code)


def _series_owner(request: HttpRequest, code: UUID) -> tuple[Scope, SeriesOwner]:
    """Decide access to a series from its owner row, or audit the denial and raise 404.

    One small query instead of the scope's nested querysets: a warm slice costs less than
    building them would.
    """
    scope, owner = scope_and_series_owner(request, code)
    if scope is None or not scope.can_view_pixels:
        raise deny(request, scope, "series")
    return scope, series_owner_or_404(request, scope, code, owner)


def _load_series(owner: SeriesOwner) -> Series:
    """Load an allowed series with its study and patient (for audit, previews, manifests)."""
    series = Series.objects.select_related("study__patient").filter(pk=owner.pk).first()
    if series is None:  # shredded between the decision and now
        raise Http404
    return series


def _audit_once(request: HttpRequest, scope: Scope, action: str, obj: Any, key: str) -> None:
    """Audit the first view of an object by this link or staff member in this session."""
    if _seen(request, scope, key):
        return
    patient = None if scope.share is not None else _patient_of(obj)
    audit.record(action, request=request, patient=patient, obj=obj, **scope.audit_kwargs())
    _remember(request, scope, key)


def _seen_key(scope: Scope, key: str) -> str:
    # Keyed by who looks: a second link opened, or another user signed in, in the same
    # browser session is audited afresh.
    who = f"share{scope.share.pk}" if scope.share is not None else f"staff{scope.staff.pk}"
    return f"{who}:{key}"


def _seen(request: HttpRequest, scope: Scope, key: str) -> bool:
    return _seen_key(scope, key) in request.session.get(SEEN_KEY, [])


def _remember(request: HttpRequest, scope: Scope, key: str) -> None:
    seen = request.session.get(SEEN_KEY, [])
    request.session[SEEN_KEY] = [*seen, _seen_key(scope, key)][-MAX_SEEN:]


def _patient_of(obj: Any) -> Any:
    if isinstance(obj, Series):
        return obj.study.patient
    return obj.patient


def _window(request: HttpRequest) -> tuple[float | None, float | None, bool]:
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


# ---------------------------------------------------------------- page


@require_GET
def view_study(request: HttpRequest, code: UUID) -> HttpResponse:
    """Show the viewer for one study: its series, photos and reports."""
    scope = scope_for(request)
    if scope is None:
        if pending_code(request):  # a recipient whose share session ended: verify again
            return redirect("/s/")
        return redirect_to_login(request.get_full_path())
    studies = scope.studies() if scope.can_view_pixels else scope.studies().none()
    study = fetch_or_404(request, scope, studies.select_related("patient"), code=code)
    series = list(scope.series().filter(study=study).order_by("number", "pk"))
    attachments = scope.attachments().filter(study=study)
    if scope.share is not None:  # a share may hold the patient's items filed under no study
        attachments = scope.attachments().filter(Q(study=study) | Q(study__isnull=True))
    attachments = list(attachments.order_by("created_at", "pk"))
    audit.record(
        Action.VIEW_STUDY, request=request, patient=study.patient, obj=study, **scope.audit_kwargs()
    )
    if not _seen(request, scope, f"study:{study.code}"):  # thumbnails need no audit of their own
        _remember(request, scope, f"study:{study.code}")
    share = scope.share
    context = {
        "study": study,
        "series_list": series,
        "attachments": attachments,
        "patient_name": study.patient.name if scope.shows_patient_name else "",
        "is_share": share is not None,
        "deidentified": bool(getattr(share, "deidentified", False)),
        "practice": scope.practice,
        # Patients start with the simple tools; dentists (referrers, staff) with all of them.
        "mode": "simple" if share is not None and share.recipient_kind == "patient" else "full",
        "back_url": "/s/home/" if share is not None else f"/studies/{study.code}/",
        # Where a viewer whose sign-in ended goes: the link's page says why, or staff sign in.
        "sign_in_url": "/s/" if share is not None else f"/login/?next={quote(request.path)}",
        "signed_in_as": "share" if share is not None else "staff",
        "planes": mpr.PLANES,
        "can_save_pictures": scope.can_save_pictures,
    }
    return _no_store(render(request, "viewer/study.html", context))


# ---------------------------------------------------------------- series


def _manifest(series: Series, layout: layouts.Layout) -> dict[str, Any]:
    base = f"/viewer/series/{series.code}"
    data: dict[str, Any] = {
        "code": str(series.code),
        "kind": layout.kind,
        "modality": series.modality,
        "description": series.description,
        "number": series.number,
        "rows": layout.rows,
        "columns": layout.columns,
        "slices": len(layout.slices),
        "colour": layout.colour,
        "monochrome1": bool(layout.slices) and layout.slices[0].info.invert,
        "pixel_spacing": list(layout.pixel_spacing) if layout.pixel_spacing else None,
        "slice_spacing": layout.slice_spacing,
        "orientation": layout.orientation,
        "rescale": {
            "slope": layout.slices[0].info.slope if layout.slices else 1.0,
            "intercept": layout.slices[0].info.intercept if layout.slices else 0.0,
        },
        "presets": presets.window_presets(layout),
        "window": None,
        "initial_index": len(layout.slices) // 2,
        "planes": {
            plane: layout.plane_geometry(plane)
            for plane in mpr.PLANES
            if layout.plane_count(plane) > 0
        },
        "urls": {
            "slice": f"{base}/{{plane}}/{{index}}",
            "thumbnail": f"{base}/thumbnail.jpg",
            "dental": f"{base}/dental/",
        },
        "error": series.decode_error,
        "reformat_note": layout.reformat_note,
        "overlays": layout.overlays,
        # Teeth found when the volume was stored (True/False); None until it is stored.
        "teeth": None if series.volume_id is None else series.opening_slice is not None,
    }
    if not layout.slices and not data["error"]:
        data["error"] = "This series has no images."
    data["key_images"] = objects.key_image_indexes(series, layout) if layout.slices else []
    return data


@require_GET
def series_manifest(request: HttpRequest, code: UUID) -> HttpResponse:
    """Describe a series for the browser; decode a few slices to tell whether it is broken.

    The series is marked broken only when every probed slice fails, and cleared once one
    decodes; a single bad slice answers 422 for itself in series_slice.
    """
    scope, owner = _series_owner(request, code)
    series = _load_series(owner)
    layout = layouts.layout_for(series)
    _audit_once(request, scope, Action.VIEW_SERIES, series, f"series:{series.code}")
    data = _manifest(series, layout)
    other = objects.describe(series, f"/viewer/series/{series.code}")
    if other:
        data.update(other)
    elif layout.slices:
        try:
            data["initial_index"] = mpr.first_decodable(layout)
            data["window"] = mpr.default_window(layout)
        except rendering.DecodeError as exc:
            previews.note_decode_error(series, exc)
        else:
            previews.note_decodable(series)
        data["error"] = objects.NOT_VIEWABLE + series.decode_error if series.decode_error else ""
    return _no_store(JsonResponse(data))


@require_GET
@xframe_options_sameorigin
@csp_replace({"frame-ancestors": ["'self'"]})
def series_video(request: HttpRequest, code: UUID) -> HttpResponse:
    """Play a video object's MP4 as stored (H.264 in MP4); the original stays a download."""
    scope, owner = _series_owner(request, code)
    series = _load_series(owner)
    video = objects.playable_video(series)
    if video is None:
        raise deny(request, scope, "series")
    _audit_once(request, scope, Action.VIEW_SERIES, series, f"series:{series.code}")
    size, chunks = video
    response = StreamingHttpResponse(chunks, content_type="video/mp4")
    response["Content-Length"] = str(size)
    response["Content-Disposition"] = "inline"
    return _no_store(response)


@require_GET
@xframe_options_sameorigin
@csp_replace({"frame-ancestors": ["'self'"]})
def series_document(request: HttpRequest, code: UUID) -> HttpResponse:
    """Show the PDF an Encapsulated PDF holds, a Structured Report as text, else a summary."""
    scope, owner = _series_owner(request, code)
    series = _load_series(owner)
    found = objects.document(series)
    _audit_once(request, scope, Action.VIEW_SERIES, series, f"series:{series.code}")
    content, content_type = found
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = "inline"
    return _no_store(response)


@require_GET
def series_thumbnail(request: HttpRequest, code: UUID) -> HttpResponse:
    """Return the series' thumbnail, building it on the fly if ingest has not yet."""
    scope, owner = _series_owner(request, code)
    series = _load_series(owner)
    _audit_once(request, scope, Action.VIEW_STUDY, series.study, f"study:{series.study.code}")
    data = previews.ensure_series_thumbnail(series)
    return _no_store(HttpResponse(data, content_type="image/jpeg"))


# ---------------------------------------------------------------- attachments


@require_GET
def attachment_thumbnail(request: HttpRequest, code: UUID) -> HttpResponse:
    """Return a photo's thumbnail or the PDF tile."""
    scope = _pixel_scope(request)
    attachment = _fetch(request, scope, code)
    _audit_once(request, scope, Action.VIEW_ATTACHMENT, attachment, f"att:{attachment.code}")
    data = previews.ensure_attachment_thumbnail(attachment)
    return _no_store(HttpResponse(data, content_type="image/jpeg"))


@require_GET
@xframe_options_sameorigin
@csp_replace({"frame-ancestors": ["'self'"]})
def attachment_file(request: HttpRequest, code: UUID) -> HttpResponse:
    """Send a photo or PDF inline; PDFs may be framed by the viewer page (same origin only)."""
    scope = _pixel_scope(request)
    attachment = _fetch(request, scope, code)
    _audit_once(request, scope, Action.VIEW_ATTACHMENT, attachment, f"att:{attachment.code}")
    content_type = attachment.content_type.split(";")[0].strip().lower()
    inline = content_type in INLINE_TYPES
    # Streamed: a PDF report can be large, and a worker holds one segment at a time.
    response = StreamingHttpResponse(
        vault.iter_range(attachment.blob),
        content_type=content_type if inline else "application/octet-stream",
    )
    response["Content-Length"] = str(attachment.blob.plain_size)
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=not inline, filename=attachment.original_name or "attachment"
    )
    return _no_store(response)


@require_GET
def series_tags(request: HttpRequest, code: UUID, index: int) -> HttpResponse:
    """Return the DICOM header of one image of a series as rows for the tag panel (audited)."""
    scope, owner = _series_owner(request, code)
    series = _load_series(owner)
    layout = layouts.layout_for(series)
    if not 0 <= index < len(layout.slices):
        raise Http404
    ref = layout.slices[index]
    try:
        ds = tags.read_header(ref.blob)
    except (tags.HeaderError, vault.VaultIntegrityError):
        return _no_store(JsonResponse({"error": "This file's header cannot be read."}, status=422))
    patient = None if scope.share is not None else series.study.patient
    audit.record(
        Action.VIEW_SERIES,
        request=request,
        patient=patient,
        obj=series,
        detail={"tags": index},
        **scope.audit_kwargs(),
    )
    rows = tags.tag_rows(ds)
    return _no_store(JsonResponse({"index": index, "frame": ref.frame, "rows": rows}))
