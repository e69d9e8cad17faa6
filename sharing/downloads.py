"""Recipient downloads: the whole share or one series as a ZIP, picture exports, single files.

The download limit counts a download when its first bytes are produced (a request that
never streams counts nothing). A Range continuation (start > 0) of a file this session
already began is not counted again while the link has delivered less than the whole file
since its last counted download (per the audit record); any other request that streams is.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Q, Sum
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

import audit
from audit.models import AccessEvent, Action, Outcome
from portal import vault
from portal.access import Scope, fetch_or_404
from portal.models import Attachment, Instance, Series
from sharing import pictures, session
from sharing.archive import ArchiveMember, DicomRef, dicom_layout, share_archive
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


class DownloadLimitReached(Exception):
    """The link's download limit was used up between the check and the first byte."""


def _scope(request: HttpRequest) -> Scope:
    return recipient_scope(request)


def _refused(request: HttpRequest, scope: Scope) -> HttpResponse:
    audit.record(
        Action.DOWNLOAD,
        request=request,
        outcome=Outcome.DENIED,
        detail={"reason": "not_allowed"},
        **scope.audit_kwargs(),
    )
    context = {"practice": scope.share.practice}
    return render(request, "sharing/no_download.html", context, status=403)


def _count_download(share: ShareLink) -> None:
    """Add one download under the limit atomically, or raise so the stream aborts."""
    allowed = Q(max_downloads__isnull=True) | Q(download_count__lt=F("max_downloads"))
    updated = (
        ShareLink.objects.filter(allowed, pk=share.pk, revoked_at__isnull=True)
        .filter(allow_download=True)
        .update(download_count=F("download_count") + 1)
    )
    if not updated:
        raise DownloadLimitReached


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
    counted: bool,
    status: int = 200,
) -> StreamingHttpResponse:
    share = scope.share
    audit.record(
        Action.DOWNLOAD,
        request=request,
        obj=obj,
        detail={
            "phase": "start",
            "kind": kind,
            "bytes_total": length,
            "from": start,
            "counted": counted,
        },  # fmt: skip
        **scope.audit_kwargs(),
    )

    def on_start() -> None:
        if counted:
            _count_download(share)

    def on_end(sent: int, complete: bool) -> None:
        audit.record(
            Action.DOWNLOAD,
            request=request,
            obj=obj,
            outcome=Outcome.OK if complete else Outcome.FAILED,
            detail={"phase": "end", "kind": kind, "bytes": sent, "complete": complete},
            **scope.audit_kwargs(),
        )

    stream = AuditedStream(body, on_start=on_start, on_end=on_end)
    response = StreamingHttpResponse(stream, content_type=content_type, status=status)
    if length is not None:
        response["Content-Length"] = str(length)
    response["Content-Disposition"] = content_disposition(filename)
    return response


@dataclass(frozen=True, slots=True)
class _Instance:
    """The instance columns a DICOMDIR record needs."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    instance_number: int | None


@dataclass(frozen=True, slots=True)
class _Blob:
    """The stored-object columns vault.iter_range reads.

    A CBCT has hundreds of files; plain rows instead of two model instances per file take
    tens of milliseconds off the time to the first byte.
    """

    code: uuid.UUID
    storage_name: str
    key_id: str
    wrapped_key: bytes | None
    plain_size: int
    segment_size: int
    crc32: int | None


_INSTANCE_COLUMNS = ("sop_class_uid", "sop_instance_uid", "transfer_syntax_uid", "instance_number")
_BLOB_COLUMNS = tuple(f"blob__{f}" for f in _Blob.__slots__)


def _dicom_ref(instance: Instance | _Instance, series: Series) -> DicomRef:
    study = series.study
    patient = study.patient
    return DicomRef(
        patient_id=patient.patient_id,
        patient_name=patient.name.replace(" ", "^"),
        study_uid=study.study_uid,
        study_date=study.study_date.strftime("%Y%m%d") if study.study_date else "",
        study_time=study.study_time,
        study_id=study.study_id,
        accession=study.accession_number,
        study_description=study.description,
        series_uid=series.series_uid,
        modality=series.modality,
        series_number=series.number,
        sop_class_uid=instance.sop_class_uid,
        sop_instance_uid=instance.sop_instance_uid,
        transfer_syntax_uid=instance.transfer_syntax_uid,
        instance_number=instance.instance_number,
        series_description=series.description,
    )


def _blob_chunks(blob) -> Any:
    return lambda: vault.iter_range(blob)


def _dicom_members(series_qs) -> list[ArchiveMember]:
    """Return the DICOM members of the series, loading only what the ZIP and DICOMDIR need."""
    series = {
        s.pk: s for s in Series.objects.filter(pk__in=series_qs).select_related("study__patient")
    }
    rows = Instance.objects.filter(series__in=list(series)).values_list(
        "series_id", *_INSTANCE_COLUMNS, *_BLOB_COLUMNS
    )
    split = 1 + len(_INSTANCE_COLUMNS)
    files = [
        (series[row[0]], _Instance(*row[1:split]), _Blob(*row[split:])) for row in rows.iterator()
    ]
    refs = [_dicom_ref(instance, s) for s, instance, _ in files]
    names = dicom_layout(refs)
    blobs = [blob for _, _, blob in files]
    return [
        ArchiveMember(name, blob.plain_size, blob.crc32, _blob_chunks(blob), ref)
        for name, blob, ref in zip(names, blobs, refs, strict=True)
    ]


def _attachment_name(index: int, attachment: Attachment) -> str:
    from sharing.streaming import _ascii_fallback

    ext = _EXTENSIONS.get(attachment.content_type, ".bin")
    stem = (attachment.original_name or attachment.title or attachment.kind).rsplit(".", 1)[0]
    folder = "Photos" if attachment.kind == Attachment.Kind.PHOTO else "Documents"
    return f"{folder}/{index:03d} {_ascii_fallback(stem)[:60]}{ext}"


def _attachment_members(attachments: Iterable[Attachment]) -> list[ArchiveMember]:
    return [
        ArchiveMember(_attachment_name(n, a), a.blob.plain_size, a.blob.crc32, _blob_chunks(a.blob))
        for n, a in enumerate(attachments, start=1)
    ]


@require_GET
def download_share(request: HttpRequest) -> HttpResponse:
    """Stream the whole share as a ZIP of originals with DICOMDIR and README."""
    scope = _scope(request)
    if not scope.can_download:
        return _refused(request, scope)
    share = scope.share
    members = _dicom_members(scope.series())
    members += _attachment_members(scope.attachments().select_related("blob"))
    zs, length = share_archive(members, share.practice.name)
    return _stream_response(
        request, scope, Prefetched(zs), length, kind="share", obj=share.study,
        filename=f"{share.practice.slug}-images.zip", content_type="application/zip",
        counted=True,
    )  # fmt: skip


@require_GET
def download_series(request: HttpRequest, code) -> HttpResponse:
    """Stream one series of the share as a ZIP with its DICOMDIR."""
    scope = _scope(request)
    series = fetch_or_404(request, scope, scope.series(), code=code)
    if not scope.can_download:
        return _refused(request, scope)
    members = _dicom_members(Series.objects.filter(pk=series.pk))
    zs, length = share_archive(members, scope.share.practice.name)
    return _stream_response(
        request, scope, Prefetched(zs), length, kind="series", obj=series,
        filename=f"{scope.share.practice.slug}-series-{series.number or 1}.zip",
        content_type="application/zip", counted=True,
    )  # fmt: skip


def _export(request: HttpRequest, scope: Scope, series_list: list[Series], *, photos: bool, obj):
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
        chosen = scope.attachments().filter(kind=Attachment.Kind.PHOTO).select_related("blob")
        members = _attachment_members(chosen)
    rendered = (item for series in series_list for item in pictures.render_series(series, fmt))
    # Without Content-Length: picture sizes are known only once rendered (see picture_zip).
    zs = pictures.picture_zip(members, rendered)
    return _stream_response(
        request, scope, zs, None, kind=f"export-{fmt}", obj=obj,
        filename=f"{scope.share.practice.slug}-pictures.zip", content_type="application/zip",
        counted=True,
    )  # fmt: skip


@require_GET
def export_share(request: HttpRequest) -> HttpResponse:
    """Stream JPEG or PNG pictures of every shared series, plus the photos as they are."""
    scope = _scope(request)
    if not scope.can_download:
        return _refused(request, scope)
    series_list = list(scope.series().order_by("number", "created_at"))
    return _export(request, scope, series_list, photos=True, obj=scope.share.study)


@require_GET
def export_series(request: HttpRequest, code) -> HttpResponse:
    """Stream JPEG or PNG pictures of one series."""
    scope = _scope(request)
    series = fetch_or_404(request, scope, scope.series(), code=code)
    if not scope.can_download:
        return _refused(request, scope)
    return _export(request, scope, [series], photos=False, obj=series)


def _free_resume_left(share: ShareLink, obj: Any, size: int) -> bool:
    """Return whether the link's last counted download of obj has bytes still to deliver.

    That download, begun at byte `from`, needed size - from bytes; resumes are free until the
    link has delivered that many since (per the audit record). Without this, `Range: bytes=1-`
    repeated would fetch the whole file again and again past the download limit.
    """
    details = (
        AccessEvent.objects.filter(
            action=Action.DOWNLOAD, share_code=share.code, object_code=str(obj.code)
        )
        .order_by("-pk")
        .values_list("detail", flat=True)[:500]
    )
    delivered = 0
    for detail in details:
        if detail.get("phase") == "end":
            delivered += int(detail.get("bytes") or 0)
        elif detail.get("phase") == "start" and detail.get("counted"):
            return delivered < size - int(detail.get("from") or 0)
    return False


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
    resumed = (
        start > 0
        and session.has_started(request, str(obj.code))
        and _free_resume_left(scope.share, obj, size)
    )
    # A resume of a file this session began is allowed past the limit; anything else counts.
    if not scope.share.allow_download or not (resumed or scope.can_download):
        return _refused(request, scope)
    session.mark_started(request, str(obj.code))
    response = _stream_response(
        request, scope, vault.iter_range(blob, start, stop), stop - start, kind=kind, obj=obj,
        filename=filename, content_type=content_type, counted=not resumed,
        status=206 if wanted else 200, start=start,
    )  # fmt: skip
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
