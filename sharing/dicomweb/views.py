"""DICOMweb endpoints of a share: thin views over qido.py and wado.py, one audit event each."""

from __future__ import annotations

import json
import re
from functools import wraps

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

import audit
from audit.models import Action, Outcome
from portal.access import SeriesOwner, deny
from portal.models import Instance
from portal.rows import fetch_related
from portal.slots import Slots
from sharing.dicomweb import qido, wado
from sharing.dicomweb.auth import Caller, Refused, authenticate
from sharing.dicomweb.tokens import Counted, count_download_once, downloads_left
from sharing.streaming import AuditedStream

UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
DICOM_JSON = "application/dicom+json"
# Renders and metadata reads (each decodes a frame or reads every header of a series) one
# token's software may run at once in a web process, as a browser session in the viewer.
HEAVY = Slots(per_client=3)


def _busy() -> HttpResponse:
    response = JsonResponse({"error": "Too many requests at once; try again."}, status=429)
    response["Retry-After"] = "1"
    return response


def _answer(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


def dicomweb(view):
    """Authenticate by token, check every UID in the path, and turn refusals into answers."""

    @require_GET
    @wraps(view)
    def wrapper(request: HttpRequest, **uids: str) -> HttpResponse:
        try:
            caller = authenticate(request)
        except Refused as refused:
            return refused.response
        if any(v and not UID.match(v) for k, v in uids.items() if k != "numbers"):
            return _not_found(request, caller, "uid")
        return _answer(view(request, caller, **uids))

    return wrapper


def _not_found(request: HttpRequest, caller: Caller, model: str) -> HttpResponse:
    deny(request, caller.scope, model, reason="outside_share", share=caller.share)
    return _answer(JsonResponse({"error": "Not found."}, status=404))


def _base(request: HttpRequest) -> str:
    return request.build_absolute_uri("/dicomweb").rstrip("/")


def _json(items) -> HttpResponse:
    if not items:
        return HttpResponse(status=204)
    return HttpResponse(json.dumps(items), content_type=DICOM_JSON)


def _record_viewing(request: HttpRequest, caller: Caller, series_uid: str, **detail) -> None:
    """Record one request for pixels: every use of a token is in the access history.

    A viewer pulls a series frame by frame, so a series viewed is many events, each naming
    the instance and the frames read.
    """
    _record(request, caller, Action.VIEW_SERIES, series=series_uid, **detail)


def _record(request: HttpRequest, caller: Caller, action: str, obj=None, **detail) -> None:
    audit.record(
        action, request=request, share=caller.share, obj=obj, detail=caller.detail(**detail)
    )


# ---------------------------------------------------------------- QIDO-RS


@dicomweb
def search_studies(request: HttpRequest, caller: Caller) -> HttpResponse:
    params = list(request.GET.items())
    items = [
        s for s in qido.search_studies(caller.scope, _base(request)) if qido.matches(s, params)
    ]
    items = qido.page(items, request.GET)
    _record(request, caller, Action.SEARCH, level="studies", results=len(items))
    return _json(items)


@dicomweb
def search_series(request: HttpRequest, caller: Caller, study: str = "") -> HttpResponse:
    params = list(request.GET.items())
    found = qido.search_series(caller.scope, _base(request), study or None)
    items = qido.page([s for s in found if qido.matches(s, params)], request.GET)
    if study and not items and not caller.scope.studies().filter(study_uid=study).exists():
        return _not_found(request, caller, "study")
    _record(request, caller, Action.SEARCH, level="series", results=len(items))
    return _json(items)


@dicomweb
def search_instances(
    request: HttpRequest, caller: Caller, study: str = "", series: str = ""
) -> HttpResponse:
    params = list(request.GET.items())
    found = qido.search_instances(caller.scope, _base(request), study or None, series or None)
    items = qido.page([i for i in found if qido.matches(i, params)], request.GET)
    if not items and (study or series):
        # A study or series in the path that the share does not cover is refused, as above.
        shared = caller.scope.instances()
        if study:
            shared = shared.filter(series__study__study_uid=study)
        if series:
            shared = shared.filter(series__series_uid=series)
        if not shared.exists():
            return _not_found(request, caller, "series" if series else "study")
    _record(request, caller, Action.SEARCH, level="instances", results=len(items))
    return _json(items)


# ---------------------------------------------------------------- WADO-RS


def _instances(caller: Caller, study: str, series: str = "", instance: str = ""):
    qs = caller.scope.instances().filter(series__study__study_uid=study)
    if series:
        qs = qs.filter(series__series_uid=series)
    if instance:
        qs = qs.filter(sop_instance_uid=instance)
    qs = qs.select_related("blob", "series__study").order_by(
        "series__number", "series__created_at", "instance_number", "created_at"
    )
    return list(qs)


def _one_instance(caller: Caller, study: str, series: str, instance: str) -> Instance | None:
    """Return one instance the share covers, in one query (the per-frame hot path)."""
    found = fetch_related(
        Instance,
        ("blob", "series", "series__study", "series__study__patient"),
        practice=caller.scope.practice_id,
        sop_instance_uid=instance,
    )
    if found is None or found.series.series_uid != series:
        return None
    s = found.series
    if s.study.study_uid != study:
        return None
    owner = SeriesOwner(s.pk, s.study_id, s.study.practice_id, s.study.patient_id,
                        s.study.patient.practice_id)  # fmt: skip
    return found if caller.scope.allows_series(owner) else None


@dicomweb
def retrieve(
    request: HttpRequest, caller: Caller, study: str, series: str = "", instance: str = ""
) -> HttpResponse:
    """Originals, byte for byte, as multipart/related; type=application/dicom."""
    found = _instances(caller, study, series, instance)
    if not found:
        return _not_found(request, caller, "instance")
    with transaction.atomic():
        if not count_download_once(caller.token, caller.share):
            return _no_downloads_left(request, caller)
        _record(
            request,
            caller,
            Action.DOWNLOAD,
            obj=caller.share.study,
            phase="start",
            what="instances",
            instances=len(found),
            bytes=sum(i.blob.plain_size for i in found),
        )
    mark = wado.boundary()
    body, length = wado.multipart(wado.original_parts(found), mark)

    def on_end(sent: int, complete: bool) -> None:
        # As the web downloads: the access history says whether the originals arrived whole.
        audit.record(
            Action.DOWNLOAD,
            request=request,
            share=caller.share,
            obj=caller.share.study,
            outcome=Outcome.OK if complete else Outcome.FAILED,
            detail=caller.detail(phase="end", what="instances", bytes=sent,
                                 bytes_total=length, complete=complete),
        )  # fmt: skip

    # Bytes are those of the response (parts and their headers), bytes_total its length.
    stream = AuditedStream(
        body, on_start=lambda: None, on_end=on_end, on_abandon=lambda: on_end(0, False)
    )
    response = StreamingHttpResponse(
        stream, content_type=f'multipart/related; type="application/dicom"; boundary={mark}'
    )
    response["Content-Length"] = str(length)
    return response


@dicomweb
def retrieve_metadata(
    request: HttpRequest, caller: Caller, study: str, series: str = "", instance: str = ""
) -> HttpResponse:
    found = _instances(caller, study, series, instance)
    if not found:
        return _not_found(request, caller, "instance")
    base = _base(request)
    items = []
    with HEAVY.take(f"token:{caller.token.pk}") as taken:
        if not taken:
            return _busy()
        for i in found:
            url = (
                f"{base}/studies/{i.series.study.study_uid}/series/{i.series.series_uid}"
                f"/instances/{i.sop_instance_uid}"
            )
            items.append(wado.metadata(i, url))
    _record(request, caller, Action.VIEW_SERIES, what="metadata", instances=len(items))
    return _json(items)


def _numbers(text: str) -> list[int] | None:
    try:
        numbers = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        return None
    return numbers if 0 < len(numbers) <= 1000 else None


def _no_downloads_left(request: HttpRequest, caller: Caller) -> HttpResponse:
    deny(request, caller.scope, "download", reason="no_downloads_left", share=caller.share)
    return JsonResponse({"error": "This link has no downloads left."}, status=403)


@dicomweb
def retrieve_frames(
    request: HttpRequest, caller: Caller, study: str, series: str, instance: str, numbers: str
) -> HttpResponse:
    """Pixel data as stored: the originals' pixels, so counted and limited like originals."""
    found = _one_instance(caller, study, series, instance)
    wanted = _numbers(numbers)
    if found is None or wanted is None:
        return _not_found(request, caller, "frame")
    if len(set(wanted)) != len(wanted):
        return JsonResponse({"error": "Ask for each frame once."}, status=400)
    if not downloads_left(caller.token, caller.share):
        return _no_downloads_left(request, caller)  # before reading a byte of the original
    try:
        ctype, parts = wado.frames(found, wanted)
    except wado.FrameError:
        return _not_found(request, caller, "frame")
    if not caller.token.download_counted:  # after its first, a token's frames cost no write
        with transaction.atomic():
            counted = count_download_once(caller.token, caller.share)
            if not counted:
                return _no_downloads_left(request, caller)
            if counted == Counted.NOW:  # recorded once, with the count it made
                _record(request, caller, Action.DOWNLOAD, obj=caller.share.study,
                        phase="start", what="frames", series=series)  # fmt: skip
    _record_viewing(request, caller, series, what="frames", instance=instance, frames=wanted)
    mark = wado.boundary()
    body, length = wado.multipart([(ctype, size, source) for size, source in parts], mark)
    response = StreamingHttpResponse(
        body, content_type=f'multipart/related; type="{ctype}"; boundary={mark}'
    )
    response["Content-Length"] = str(length)
    return response


@dicomweb
def retrieve_rendered(
    request: HttpRequest,
    caller: Caller,
    study: str,
    series: str,
    instance: str,
    numbers: str = "1",
) -> HttpResponse:
    found = _one_instance(caller, study, series, instance)
    wanted = _numbers(numbers)
    if found is None or not wanted or len(wanted) != 1:
        return _not_found(request, caller, "frame")
    fmt = "png" if "image/png" in request.META.get("HTTP_ACCEPT", "") else "jpeg"
    with HEAVY.take(f"token:{caller.token.pk}") as taken:
        if not taken:
            return _busy()
        try:
            image = wado.rendered(found, wanted[0], fmt)
        except wado.FrameError:
            return _not_found(request, caller, "frame")
    _record_viewing(request, caller, series, what="rendered", instance=instance,
                    frames=wanted)  # fmt: skip
    return HttpResponse(image, content_type=f"image/{fmt}")
