"""Pictures saved from the viewer: one image of a scan, the panoramic, a cross-section.

The views that draw the screen's images are display, never downloads (a view-only link gets
them); a saved picture is the same rendering with a name, allowed where the share allows
downloads and audited as one (never counted: sharing.downloads.send_picture), or audited as
a staff member's download.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views.decorators.http import require_GET

import audit
from audit.models import Action
from portal.access import Scope
from sharing.downloads import refuse_download, send_picture
from viewer import layouts, mpr
from viewer.series_access import FORMATS, load_series, no_store, series_owner, window_from_query
from viewer.slice_views import render_requested_slice

EXTENSIONS = {"jpeg": "jpg", "png": "png"}


def picture_name(series: Any, what: str, fmt: str) -> str:
    """Return a download's name from the practice, the study, its date and what it shows."""
    study = series.study
    when = study.study_date.isoformat() if study.study_date else ""
    bits = [study.practice.name, study.description or "scan", when, what]
    name = "-".join(filter(None, (slugify(b) for b in bits)))[:150]
    return f"{name}.{EXTENSIONS[fmt]}"


def send_picture_download(
    request: HttpRequest, scope: Scope, series: Any, data: bytes, what: str, fmt: str, kind: str
) -> HttpResponse:
    """Send a rendered picture as a download named for what it shows."""
    filename = picture_name(series, what, fmt)
    if scope.share is not None:
        return no_store(send_picture(request, scope, data, filename, FORMATS[fmt], series, kind))
    audit.record(
        Action.DOWNLOAD,
        request=request,
        patient=series.study.patient,
        obj=series,
        detail={"kind": kind, "bytes": len(data)},
        **scope.audit_kwargs(),
    )
    response = HttpResponse(data, content_type=FORMATS[fmt])
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return no_store(response)


@require_GET
def export_slice_picture(
    request: HttpRequest, code: UUID, plane: str, index: int, fmt: str
) -> HttpResponse:
    """Save the image on screen (its plane, number and window) as a JPEG or PNG picture."""
    scope, owner = series_owner(request, code)
    if not scope.can_save_pictures:
        return refuse_download(request, scope)  # before any rendering
    series = load_series(owner)
    layout = layouts.cached_layout(code) or layouts.layout_for(series)
    if plane not in mpr.PLANES or not 0 <= index < layout.plane_count(plane):
        raise Http404
    try:
        window = window_from_query(request)
    except ValueError:
        return HttpResponseBadRequest("Bad window parameters.", content_type="text/plain")
    data = render_requested_slice(request, layout, plane, index, window, fmt)
    if isinstance(data, HttpResponse):
        return data
    return send_picture_download(
        request, scope, series, data, f"{plane}-{index + 1}", fmt, kind=f"{plane}-{fmt}"
    )
