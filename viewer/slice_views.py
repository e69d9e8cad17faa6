"""The viewer's hot path: one image of a plane, rendered at the window the viewer asks for.

A saved picture of it (viewer.picture_downloads) is drawn by the same render_requested_slice.
"""

from __future__ import annotations

from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.http import require_GET

from audit.models import Action
from viewer import layouts, mpr
from viewer import render as rendering
from viewer.series_access import (
    FORMATS,
    audit_once,
    load_series,
    no_store,
    seen,
    series_owner,
    window_from_query,
)


@require_GET
def series_slice(
    request: HttpRequest, code: UUID, plane: str, index: int, fmt: str = "jpeg"
) -> HttpResponse:
    """Render one image of a plane at the requested window as JPEG (or PNG for lossless).

    The hot path of the viewer: access is decided from the owner row and the layout comes
    from memory, so a warm slice loads no Series. The PNG is display, not a download: the
    viewer's Exact pixels switch asks for it, so a view-only share (or one whose downloads are
    used up) gets it too; it shows one windowed image as the screen does, while the original
    files and saved pictures go through the share's download rules.
    """
    scope, owner = series_owner(request, code)
    series = None
    layout = layouts.cached_layout(code)
    if layout is None:
        series = load_series(owner)
        layout = layouts.layout_for(series)
    if plane not in mpr.PLANES or not 0 <= index < layout.plane_count(plane):
        raise Http404
    try:
        center, width, invert = window_from_query(request)
    except ValueError:
        return HttpResponseBadRequest("Bad window parameters.", content_type="text/plain")
    key = f"series:{code}"
    if not seen(request, scope, key):
        series = series or load_series(owner)
        audit_once(request, scope, Action.VIEW_SERIES, series, key)
    data = render_requested_slice(request, layout, plane, index, (center, width, invert), fmt)
    if isinstance(data, HttpResponse):
        return data
    return no_store(HttpResponse(data, content_type=FORMATS[fmt]))


def render_requested_slice(
    request: HttpRequest, layout: layouts.Layout, plane: str, index: int, window: tuple, fmt: str
) -> bytes | HttpResponse:
    """Render one image as the request asks (window, overlays, LUT), or the answer saying why
    not: the viewer's slice and a saved picture of it are drawn alike."""
    center, width, invert = window
    try:
        if center is None or width is None:
            default = mpr.default_window(layout)
            center = default["center"] if center is None else center
            width = default["width"] if width is None else width
        overlay = request.GET.get("overlay", "1") not in ("0", "false")
        lut = request.GET.get("lut") == "1"
        return mpr.render_plane(layout, plane, index, center, width, invert, fmt, overlay, lut)
    except mpr.VolumeTooLarge as exc:
        return no_store(HttpResponse(str(exc), status=413, content_type="text/plain"))
    except rendering.DecodeError as exc:
        # This image only: the rest of the series may be fine, and the manifest decides that.
        return no_store(HttpResponse(str(exc)[:200], status=422, content_type="text/plain"))
