"""Recipient downloads: the whole share or one series as a ZIP, picture exports, single files.

What counts against a link's download limit is decided in sharing.download_limit, one
request of a link at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.text import slugify
from django.views.decorators.http import require_GET

import audit
from audit.models import Action, Outcome
from portal import vault
from portal.access import Scope, fetch_or_404
from portal.models import Instance, Series
from sharing import download_limit, notices, pictures, plans
from sharing.denials import recipient_scope
from sharing.models import ShareLink
from sharing.streaming import (
    UNSATISFIABLE,
    AuditedStream,
    Prefetched,
    content_disposition,
    parse_range,
)

EXPORT_MAX_IMAGES = 3000
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}


def _scope(request: HttpRequest) -> Scope:
    return recipient_scope(request)


def refuse_download(request: HttpRequest, scope: Scope) -> HttpResponse:
    """Answer 403 to a download the link does not allow (or has none left of), audited."""
    audit.record(
        Action.DOWNLOAD,
        request=request,
        outcome=Outcome.DENIED,
        detail={"reason": "not_allowed"},
        **scope.audit_kwargs(),
    )
    context = {"practice": scope.share.practice}
    return render(request, "sharing/no_download.html", context, status=403)


def _stream_response(
    request: HttpRequest,
    scope: Scope,
    body: Iterable[bytes],
    length: int | None,
    *,
    start: int = 0,
    kind: str,
    obj: Any,
    filename: str,
    content_type: str,
    status: int = 200,
    file_size: int | None = None,
) -> HttpResponse:
    """Stream body if the link's download limit lets it (403 if not), counting it once.

    `file_size` marks a single file (bytes start to start + length of it), which a resume
    by the same session may fetch again without counting (sharing.download_limit).
    """
    with transaction.atomic():
        claim = download_limit.claim(
            request, scope.share, object_code=obj.code if file_size is not None else None,
            size=file_size or 0, start=start, stop=start + (length or 0),
        )  # fmt: skip
        if claim is None:
            return refuse_download(request, scope)
        first = claim.counted and scope.share.download_count == 1
        audit.record(
            Action.DOWNLOAD,
            request=request,
            obj=obj,
            detail={
                "phase": "start",
                "kind": kind,
                "bytes_total": length,
                "from": start,
                "counted": claim.counted,
            },  # fmt: skip
            **scope.audit_kwargs(),
        )

    def on_end(sent: int, complete: bool) -> None:
        download_limit.settle(claim, sent)
        audit.record(
            Action.DOWNLOAD,
            request=request,
            obj=obj,
            outcome=Outcome.OK if complete else Outcome.FAILED,
            detail={"phase": "end", "kind": kind, "bytes": sent, "complete": complete},
            **scope.audit_kwargs(),
        )
        if complete and first:
            notices.link_used(scope.share, "downloaded")

    stream = AuditedStream(
        body, on_start=lambda: None, on_end=on_end, on_abandon=lambda: download_limit.release(claim)
    )
    response = StreamingHttpResponse(stream, content_type=content_type, status=status)
    if length is not None:
        response["Content-Length"] = str(length)
    response["Content-Disposition"] = content_disposition(filename)
    return response


@require_GET
def download_share(request: HttpRequest) -> HttpResponse:
    """Stream the whole share as a ZIP of originals with DICOMDIR and README."""
    scope = _scope(request)
    if not scope.can_download:
        return refuse_download(request, scope)
    share = scope.share
    zs, length = plans.share_zip(scope)
    return _stream_response(
        request, scope, Prefetched(zs), length, kind="share", obj=share.study,
        filename=download_name(share, "original-files"), content_type="application/zip",
    )  # fmt: skip


@require_GET
def download_series(request: HttpRequest, code) -> HttpResponse:
    """Stream one series of the share as a ZIP with its DICOMDIR."""
    scope = _scope(request)
    series = fetch_or_404(request, scope, scope.series(), code=code)
    if not scope.can_download:
        return refuse_download(request, scope)
    zs, length = plans.series_zip(scope, series)
    return _stream_response(
        request, scope, Prefetched(zs), length, kind="series", obj=series,
        filename=download_name(scope.share, f"series-{series.number or 1}", "original-files"),
        content_type="application/zip",
    )  # fmt: skip


def download_name(share: ShareLink, *parts: str) -> str:
    """Return a ZIP's name from the practice, the study and its date ("smile-dental-cbct-...")."""
    study = share.study
    when = study.study_date.isoformat() if study.study_date else ""
    bits = [share.practice.name, study.description or "images", when, *parts]
    return "-".join(filter(None, (slugify(b) for b in bits)))[:150] + ".zip"


def _export(
    request: HttpRequest,
    scope: Scope,
    series_list: list[Series],
    *,
    photos: bool,
    obj,
    suffix: tuple[str, ...] = (),
):
    fmt = request.GET.get("format", "jpeg")
    if fmt not in ("jpeg", "png"):
        fmt = "jpeg"
    frames = Instance.objects.filter(series__in=series_list).aggregate(n=Sum("frames"))["n"] or 0
    if frames > EXPORT_MAX_IMAGES:
        audit.record(
            Action.DOWNLOAD,
            request=request,
            obj=obj,
            outcome=Outcome.DENIED,
            detail={"reason": "too_many_images", "kind": f"export-{fmt}", "images": frames},
            **scope.audit_kwargs(),
        )
        context = {"practice": scope.share.practice}
        return render(request, "sharing/too_big.html", context, status=413)
    members = []
    if photos:
        # Photos and reports (PDF) as they were uploaded: everything a patient can look at.
        chosen = scope.attachments().order_by("created_at", "pk").select_related("blob")
        members = plans.attachment_members(chosen)
    rendered = (item for series in series_list for item in pictures.render_series(series, fmt))
    # Without Content-Length: picture sizes are known only once rendered (see picture_zip).
    zs = pictures.picture_zip(members, rendered)
    return _stream_response(
        request, scope, zs, None, kind=f"export-{fmt}", obj=obj,
        filename=download_name(scope.share, *suffix, "pictures"), content_type="application/zip",
    )  # fmt: skip


@require_GET
def export_share(request: HttpRequest) -> HttpResponse:
    """Stream JPEG or PNG pictures of every shared series, plus the photos as they are."""
    scope = _scope(request)
    if not scope.can_download:
        return refuse_download(request, scope)
    series_list = list(scope.series().order_by("number", "created_at"))
    return _export(request, scope, series_list, photos=True, obj=scope.share.study)


@require_GET
def export_series(request: HttpRequest, code) -> HttpResponse:
    """Stream JPEG or PNG pictures of one series."""
    scope = _scope(request)
    series = fetch_or_404(request, scope, scope.series(), code=code)
    if not scope.can_download:
        return refuse_download(request, scope)
    suffix = (f"series-{series.number or 1}",)
    return _export(request, scope, [series], photos=False, obj=series, suffix=suffix)


def _single_file(
    request: HttpRequest, scope: Scope, obj, blob, filename: str, content_type: str, kind: str
) -> HttpResponse:
    size = blob.plain_size
    etag = f'"{blob.sha256}"'
    wanted = parse_range(request.headers.get("Range"), size)
    if_range = request.headers.get("If-Range")
    if wanted is not None and if_range and if_range.strip() != etag:
        wanted = None
    if wanted == UNSATISFIABLE:
        response = render(request, "sharing/range.html", {}, status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    start, stop = wanted if wanted else (0, size)
    if not scope.share.allow_download:
        return refuse_download(request, scope)
    response = _stream_response(
        request, scope, vault.iter_range(blob, start, stop), stop - start, kind=kind, obj=obj,
        filename=filename, content_type=content_type, status=206 if wanted else 200,
        start=start, file_size=size,
    )  # fmt: skip
    if response.status_code == 403:
        return response
    if wanted:
        response["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    return response


@require_GET
def download_attachment(request: HttpRequest, code) -> HttpResponse:
    """Send one photo or PDF as uploaded, answering single Range requests."""
    scope = _scope(request)
    attachment = fetch_or_404(request, scope, scope.attachments().select_related("blob"), code=code)
    ext = _EXTENSIONS.get(attachment.content_type, "")
    name = attachment.original_name or f"{attachment.kind}{ext}"
    return _single_file(
        request, scope, attachment, attachment.blob, name, attachment.content_type, "attachment"
    )


@require_GET
def download_instance(request: HttpRequest, code) -> HttpResponse:
    """Send one DICOM file as uploaded, answering single Range requests."""
    scope = _scope(request)
    instance = fetch_or_404(request, scope, scope.instances().select_related("blob"), code=code)
    name = f"IM{instance.instance_number or 0:06d}.dcm"
    return _single_file(
        request, scope, instance, instance.blob, name, "application/dicom", "instance"
    )


def send_picture(
    request: HttpRequest,
    scope: Scope,
    data: bytes,
    filename: str,
    content_type: str,
    obj: Any,
    kind: str,
) -> HttpResponse:
    """Send one rendered picture (an image on the screen, a panoramic, a cross-section) as a
    download of the share: audited as one, never counted against the link's limit (it is
    what a screenshot of the viewer gives; counting it used up the download a referrer was
    sent for the originals). 403 when the link does not allow downloads.
    """
    if not scope.can_save_pictures:
        return refuse_download(request, scope)
    audit.record(
        Action.DOWNLOAD,
        request=request,
        obj=obj,
        # A "start" like every download: the accounting of disclosures and the unusual
        # downloads alert count it (it is whole once the response is made).
        detail={"phase": "start", "kind": kind, "bytes_total": len(data), "counted": False},
        **scope.audit_kwargs(),
    )
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = content_disposition(filename)
    response["Content-Length"] = str(len(data))
    return response
