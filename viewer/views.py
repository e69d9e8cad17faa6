"""Viewer endpoints: the page, series manifests, rendered slices, thumbnails and attachments.

Every view fetches through portal.access; pixels additionally need Scope.can_view_pixels.
"""

from __future__ import annotations

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
    deny,
    fetch_or_404,
    scope_for,
)
from portal.models import Series
from sharing.session import pending_code
from viewer import layouts, mpr, objects, presets, previews, tags
from viewer import render as rendering
from viewer.series_access import (
    audit_once,
    fetch_attachment,
    load_series,
    no_store,
    pixel_scope,
    remember,
    seen,
    series_owner,
)

INLINE_TYPES = {"image/jpeg", "image/png", "image/webp", "application/pdf"}


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
    if not seen(request, scope, f"study:{study.code}"):  # thumbnails need no audit of their own
        remember(request, scope, f"study:{study.code}")
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
    return no_store(render(request, "viewer/study.html", context))


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
    scope, owner = series_owner(request, code)
    series = load_series(owner)
    layout = layouts.layout_for(series)
    audit_once(request, scope, Action.VIEW_SERIES, series, f"series:{series.code}")
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
    return no_store(JsonResponse(data))


@require_GET
@xframe_options_sameorigin
@csp_replace({"frame-ancestors": ["'self'"]})
def series_video(request: HttpRequest, code: UUID) -> HttpResponse:
    """Play a video object's MP4 as stored (H.264 in MP4); the original stays a download."""
    scope, owner = series_owner(request, code)
    series = load_series(owner)
    video = objects.playable_video(series)
    if video is None:
        raise deny(request, scope, "series")
    audit_once(request, scope, Action.VIEW_SERIES, series, f"series:{series.code}")
    size, chunks = video
    response = StreamingHttpResponse(chunks, content_type="video/mp4")
    response["Content-Length"] = str(size)
    response["Content-Disposition"] = "inline"
    return no_store(response)


@require_GET
@xframe_options_sameorigin
@csp_replace({"frame-ancestors": ["'self'"]})
def series_document(request: HttpRequest, code: UUID) -> HttpResponse:
    """Show the PDF an Encapsulated PDF holds, a Structured Report as text, else a summary."""
    scope, owner = series_owner(request, code)
    series = load_series(owner)
    found = objects.document(series)
    audit_once(request, scope, Action.VIEW_SERIES, series, f"series:{series.code}")
    content, content_type = found
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = "inline"
    return no_store(response)


@require_GET
def series_thumbnail(request: HttpRequest, code: UUID) -> HttpResponse:
    """Return the series' thumbnail, building it on the fly if ingest has not yet."""
    scope, owner = series_owner(request, code)
    series = load_series(owner)
    audit_once(request, scope, Action.VIEW_STUDY, series.study, f"study:{series.study.code}")
    data = previews.ensure_series_thumbnail(series)
    return no_store(HttpResponse(data, content_type="image/jpeg"))


# ---------------------------------------------------------------- attachments


@require_GET
def attachment_thumbnail(request: HttpRequest, code: UUID) -> HttpResponse:
    """Return a photo's thumbnail or the PDF tile."""
    scope = pixel_scope(request)
    attachment = fetch_attachment(request, scope, code)
    audit_once(request, scope, Action.VIEW_ATTACHMENT, attachment, f"att:{attachment.code}")
    data = previews.ensure_attachment_thumbnail(attachment)
    return no_store(HttpResponse(data, content_type="image/jpeg"))


@require_GET
@xframe_options_sameorigin
@csp_replace({"frame-ancestors": ["'self'"]})
def attachment_file(request: HttpRequest, code: UUID) -> HttpResponse:
    """Send a photo or PDF inline; PDFs may be framed by the viewer page (same origin only)."""
    scope = pixel_scope(request)
    attachment = fetch_attachment(request, scope, code)
    audit_once(request, scope, Action.VIEW_ATTACHMENT, attachment, f"att:{attachment.code}")
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
    return no_store(response)


@require_GET
def series_tags(request: HttpRequest, code: UUID, index: int) -> HttpResponse:
    """Return the DICOM header of one image of a series as rows for the tag panel (audited)."""
    scope, owner = series_owner(request, code)
    series = load_series(owner)
    layout = layouts.layout_for(series)
    if not 0 <= index < len(layout.slices):
        raise Http404
    ref = layout.slices[index]
    try:
        ds = tags.read_header(ref.blob)
    except (tags.HeaderError, vault.VaultIntegrityError):
        return no_store(JsonResponse({"error": "This file's header cannot be read."}, status=422))
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
    return no_store(JsonResponse({"index": index, "frame": ref.frame, "rows": rows}))
