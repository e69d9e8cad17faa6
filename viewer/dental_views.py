"""Dental views of a CBCT: the detected arch, the panoramic and cross-sections along it.

Access, audit and caching are those of the slice views (viewer.views): the series' owner row
decides who may see it, the first image of a series is audited once per session, and encoded
images live in the bounded in-memory image cache. Picture exports are downloads: audited as
such, allowed where the share allows downloads, never counted (sharing.downloads.send_picture).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from audit.models import Action
from portal.access import Scope
from portal.slots import Slots
from sharing.downloads import refuse_download
from viewer import arches, dental, layouts, mpr
from viewer import render as rendering
from viewer.dental_params import BadParameter, parse_curve, parse_panoramic, parse_section
from viewer.layouts import Layout
from viewer.picture_downloads import send_picture_download
from viewer.series_access import (
    FORMATS,
    audit_once,
    load_series,
    no_store,
    seen,
    series_owner,
    window_from_query,
)

PATH_STEP_MM = 1.0
# Renders one browser session may run at once in this process (gunicorn runs 4 threads): a
# script firing requests in parallel gets 429 instead of holding every thread. The viewer
# keeps one request per pane in flight and retries a 429 a moment later (a cross-section
# takes milliseconds, so a slot frees at once).
RENDERS = Slots(per_client=3)


def _bad(exc: Exception) -> HttpResponse:
    return no_store(HttpResponse(str(exc), status=400, content_type="text/plain"))


def _refused(layout: Layout) -> HttpResponse | None:
    """Return a 422 when the volume's spacing cannot be trusted for dental views, else None."""
    try:
        dental.check_spacing(_spacing(layout))
    except dental.SpacingError as exc:
        return no_store(JsonResponse({"error": str(exc)}, status=422))
    return None


def _dental_layout(request: HttpRequest, code: UUID) -> tuple[Scope, Any, Layout]:
    """Decide access as the slice views do and return a greyscale volume's layout, else 404."""
    scope, owner = series_owner(request, code)
    layout = layouts.cached_layout(code)
    if layout is None:
        layout = layouts.layout_for(load_series(owner))
    if layout.kind != "volume" or layout.colour or not layout.pixel_spacing:
        raise Http404
    key = f"series:{code}"
    if not seen(request, scope, key):
        audit_once(request, scope, Action.VIEW_SERIES, load_series(owner), key)
    return scope, owner, layout


def _spacing(layout: Layout) -> tuple[float, float, float]:
    return layout.voxel_spacing()


def _shape(layout: Layout) -> tuple[int, int, int]:
    return (len(layout.slices), layout.rows, layout.columns)


def _geometry(layout: Layout) -> dict[str, Any]:
    """Return how rows and columns of panoramic and cross-section images map to mm and slices."""
    slice_mm, dy, dx = _spacing(layout)
    count = len(layout.slices)
    return {
        "mm_per_row": slice_mm,
        "mm_per_col": min(dy, dx),
        "top_slice": count - 1 if layout.head_last else 0,
        "slice_step": -1 if layout.head_last else 1,
        "slices": count,
        "pixel_spacing": [dy, dx],
    }


def curve_path(curve: dental.ArchCurve, layout: Layout) -> dict[str, Any]:
    """Return the curve sampled every PATH_STEP_MM: axial points, buccal normals, length."""
    _, dy, dx = _spacing(layout)
    samples = dental.sample_curve(curve, PATH_STEP_MM, (dy, dx))
    length = float(dental.curve_length(curve, (dy, dx)))
    return {
        "curve": curve.as_dict(),
        "length_mm": round(length, 3),
        "step_mm": PATH_STEP_MM,
        "points": [[round(float(c), 2), round(float(r), 2)] for c, r in samples.points],
        "normals": [[round(float(c), 4), round(float(r), 4)] for c, r in samples.normals],
    }


def detected_arch(layout: Layout) -> dict[str, Any]:
    """Return the arch found on the volume (viewer.arches caches it), or {"error": ...}."""
    curve = arches.detected_arch(layout)
    if curve is None:
        return {"error": "No teeth were found in this scan, so there is no panoramic view."}
    return {"error": "", **curve_path(curve, layout)}


@require_GET
def dental_arch(request: HttpRequest, code: UUID) -> HttpResponse:
    """Return the detected arch as JSON, with the geometry of the panoramic images."""
    _, _, layout = _dental_layout(request, code)
    if refused := _refused(layout):
        return refused
    try:
        data = {**detected_arch(layout), "geometry": _geometry(layout)}
    except mpr.VolumeTooLarge as exc:
        return no_store(JsonResponse({"error": str(exc)}, status=413))
    except rendering.DecodeError as exc:
        return no_store(JsonResponse({"error": str(exc)[:200]}, status=422))
    status = 422 if data["error"] else 200
    return no_store(JsonResponse(data, status=status))


@require_GET
def dental_path(request: HttpRequest, code: UUID) -> HttpResponse:
    """Return an edited curve sampled along its length (no pixels are read)."""
    _, _, layout = _dental_layout(request, code)
    if refused := _refused(layout):
        return refused
    try:
        curve, _ = parse_curve(request.GET, _shape(layout), _spacing(layout)[1:])
    except BadParameter as exc:
        return _bad(exc)
    return no_store(JsonResponse(curve_path(curve, layout)))


def _image(request: HttpRequest, layout: Layout, kind: str, fmt: str) -> bytes | HttpResponse:
    """Render a panoramic or cross-section from the query, cached; a response on bad input."""
    if refused := _refused(layout):
        return refused
    try:
        center, width, invert = window_from_query(request)
        shape, pixel = _shape(layout), _spacing(layout)[1:]
        params = (parse_panoramic if kind == "panoramic" else parse_section)(
            request.GET, shape, pixel
        )
    except (BadParameter, ValueError) as exc:
        return _bad(exc)
    try:
        if center is None or width is None:
            window = mpr.default_window(layout)
            center = window["center"] if center is None else center
            width = window["width"] if width is None else width
        key = (layout.key, *params.key(), float(center), float(width), invert, fmt)
        cache = mpr.image_cache()
        data = cache.get(key)
        if data is None:
            who = request.session.session_key or request.META.get("REMOTE_ADDR", "")
            with RENDERS.take(who) as taken:
                if not taken:
                    response = HttpResponse("Too many images at once.", status=429)
                    response["Retry-After"] = "1"
                    return no_store(response)
                reformat = _reformat(layout, kind, params)
                info = rendering.RenderInfo(1.0, 0.0, layout.slices[0].info.invert)
                data = rendering.render_slice(
                    reformat.pixels, info, center, width, fmt, invert, mpr.JPEG_QUALITY
                )
            cache.put(key, data)
    except dental.TooLarge as exc:
        return _bad(exc)
    except mpr.VolumeTooLarge as exc:
        return no_store(HttpResponse(str(exc), status=413, content_type="text/plain"))
    except rendering.DecodeError as exc:
        return no_store(HttpResponse(str(exc)[:200], status=422, content_type="text/plain"))
    return data


def _reformat(layout: Layout, kind: str, params: Any) -> dental.Reformat:
    if kind == "panoramic":
        return arches.panoramic_of(layout, params.curve, params.thickness_mm, params.mode)
    return arches.cross_sections_of(
        layout, params.curve, [params.at_mm], params.width_mm, params.thickness_mm
    )[0]


@require_GET
def dental_image(request: HttpRequest, code: UUID, kind: str, fmt: str = "jpeg") -> HttpResponse:
    """Render the panoramic or a cross-section for a curve in the query, as JPEG or PNG.

    The PNG is for display, as the slice view's .png: the viewer's Exact pixels switch shows it,
    so a share that may only view (or whose downloads are used up) still gets it. What it
    shows is what the screen shows; saving a picture goes through export_dental_picture,
    which the share's download rules allow and count.
    """
    if kind not in ("panoramic", "section"):
        raise Http404
    _, _, layout = _dental_layout(request, code)
    data = _image(request, layout, kind, fmt)
    if isinstance(data, HttpResponse):
        return data
    return no_store(HttpResponse(data, content_type=FORMATS[fmt]))


@require_GET
def export_dental_picture(request: HttpRequest, code: UUID, kind: str, fmt: str) -> HttpResponse:
    """Download the panoramic or a cross-section as a JPEG or PNG picture (a download)."""
    if kind not in ("panoramic", "section") or fmt not in FORMATS:
        raise Http404
    scope, owner, layout = _dental_layout(request, code)
    if not scope.can_save_pictures:
        return refuse_download(request, scope)  # before any rendering
    data = _image(request, layout, kind, fmt)
    if isinstance(data, HttpResponse):
        return data
    series = load_series(owner)
    at = f"{float(request.GET['at']):.1f}".replace(".", "-") if kind == "section" else ""
    what = "panoramic" if kind == "panoramic" else f"cross-section-{at}mm"
    return send_picture_download(request, scope, series, data, what, fmt, kind=f"{kind}-{fmt}")
