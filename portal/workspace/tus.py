"""A small tus 1.0.0 server (core, creation, termination) whose bytes go straight to the vault.

Each PATCH is encrypted into its own StoredObject (an UploadChunk); nothing plaintext touches
disk. When every file of a batch has all its bytes, the files are read back as streams over their
chunks and ingested together, then the staged chunks are shredded.
"""

from __future__ import annotations

import base64
import binascii
import io
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

import audit
from audit.models import Action, Outcome
from portal import vault
from portal.models import UploadBatch, UploadChunk, UploadSession
from portal.request_bodies import BodyTooSlow
from portal.sizes import file_size
from portal.textchecks import has_control_characters
from portal.workspace.decorators import staff_required

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
MAX_NAME = 500


def _tus_response(status: int, **headers: str) -> HttpResponse:
    response = HttpResponse(status=status)
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response


def _error(status: int, message: str) -> HttpResponse:
    response = _tus_response(status)
    response.content = message.encode()
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    return response


def parse_metadata(header: str) -> dict[str, str]:
    """Parse Upload-Metadata ('key base64value,key2 ...'); raise ValueError when malformed."""
    result: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = pair.partition(" ")
        if not key or key in result:
            raise ValueError("bad metadata key")
        try:
            result[key] = base64.b64decode(value, validate=True).decode() if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("bad metadata value") from None
    return result


def _options() -> HttpResponse:
    return _tus_response(
        204,
        Tus_Version=TUS_VERSION,
        Tus_Extension=EXTENSIONS,
        Tus_Max_Size=str(settings.PORTAL_MAX_FILE_BYTES),
    )


def _version_ok(request: HttpRequest) -> bool:
    return request.headers.get("Tus-Resumable") == TUS_VERSION


def _clean_name(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts)[:MAX_NAME]


@require_http_methods(["OPTIONS", "POST"])
@staff_required
def create_upload(request: HttpRequest) -> HttpResponse:
    """Create an upload of Upload-Length bytes in one of the requester's open batches."""
    if request.method == "OPTIONS":
        return _options()
    if not _version_ok(request):
        return _error(412, "Tus-Resumable 1.0.0 required.")
    try:
        length = int(request.headers.get("Upload-Length", ""))
        meta = parse_metadata(request.headers.get("Upload-Metadata", ""))
        batch_code = UUID(meta.get("batch", ""))
    except ValueError:
        return _error(400, "Upload-Length and Upload-Metadata with a batch are required.")
    if length < 0:
        return _error(400, "Upload-Length must not be negative.")
    if length > settings.PORTAL_MAX_FILE_BYTES:
        return _error(413, "This file is larger than the portal accepts.")
    batch = UploadBatch.objects.filter(
        code=batch_code,
        practice=request.scope.practice,
        created_by=request.user,
        state=UploadBatch.State.OPEN,
    ).first()
    if batch is None:
        _audit_denied(request, "uploadbatch")
        return _error(404, "Unknown or finished upload batch.")
    too_much = _room_refusal(request, batch, length)
    if too_much:
        return _error(413, too_much)
    name = _clean_name(meta.get("relativePath") or meta.get("filename") or "") or "upload"
    if has_control_characters(name):
        shown = name.encode("unicode_escape").decode()
        return _error(
            400,
            f"The name of the file {shown} holds invisible control characters (such as a NUL "
            "byte or a text-direction mark): rename the file, then upload it again.",
        )
    upload = UploadSession.objects.create(
        practice=request.scope.practice,
        created_by=request.user,
        batch=batch,
        relative_name=name,
        length=length,
        completed_at=timezone.now() if length == 0 else None,
    )
    return _tus_response(201, Location=f"/upload/tus/{upload.code}", Upload_Offset="0")


def _room_refusal(request: HttpRequest, batch: UploadBatch, length: int) -> str:
    """Why one more file of `length` bytes does not fit, or "".

    A batch is a dropped folder or archive: it holds what an archive may. A person's uploads
    not yet ingested are bounded too: every byte sent is sealed into the vault at once.
    """
    held = batch.uploads.aggregate(files=Count("pk"), size=Sum("length"))
    files, size = held["files"], held["size"] or 0
    if files + 1 > settings.PORTAL_MAX_ARCHIVE_MEMBERS:
        most = settings.PORTAL_MAX_ARCHIVE_MEMBERS
        return f"One upload holds at most {most} files: send the rest in another."
    if size + length > settings.PORTAL_MAX_ARCHIVE_BYTES:
        limit = file_size(settings.PORTAL_MAX_ARCHIVE_BYTES)
        return f"One upload holds at most {limit}: send the rest in another."
    staged = UploadSession.objects.filter(created_by=request.user, ingested_at__isnull=True)
    total = staged.aggregate(size=Sum("length"))["size"] or 0
    if total + length > settings.PORTAL_UPLOAD_STAGED_MAX_BYTES:
        limit = file_size(settings.PORTAL_UPLOAD_STAGED_MAX_BYTES)
        return (
            f"Your uploads not yet added to the records already hold close to {limit}: "
            "finish them (or wait until unfinished ones are cleared after two days) first."
        )
    return ""


def _own_upload(request: HttpRequest, code: UUID) -> UploadSession | None:
    upload = UploadSession.objects.filter(
        code=code, practice=request.scope.practice, created_by=request.user
    ).first()
    if upload is None:
        _audit_denied(request, "uploadsession")
    return upload


def _audit_denied(request: HttpRequest, model: str) -> None:
    audit.record(
        Action.ACCESS_DENIED,
        request=request,
        outcome=Outcome.DENIED,
        detail={"model": model, "path_kind": "tus"},
        **request.scope.audit_kwargs(),
    )


class _Capped:
    """Read at most `limit` bytes from the request; a dropped connection simply ends the body."""

    def __init__(self, src, limit: int) -> None:
        self.src, self.left = src, limit

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size is None or size < 0 else min(size, self.left)
        try:
            data = self.src.read(size)
        except (OSError, BodyTooSlow):
            # Keep what arrived: the client asks HEAD for the offset and resumes from there.
            self.left = 0
            return b""
        self.left -= len(data)
        return data


@require_http_methods(["OPTIONS", "HEAD", "PATCH", "DELETE"])
@staff_required
def upload_detail(request: HttpRequest, code: UUID) -> HttpResponse:
    """Report the offset (HEAD), append bytes (PATCH) or cancel (DELETE) one upload."""
    if request.method == "OPTIONS":
        return _options()
    if not _version_ok(request):
        return _error(412, "Tus-Resumable 1.0.0 required.")
    upload = _own_upload(request, code)
    if upload is None or upload.ingested_at is not None:
        return _error(404, "Unknown upload.")
    if request.method == "HEAD":
        return _tus_response(
            200, Upload_Offset=str(upload.offset), Upload_Length=str(upload.length)
        )
    if request.method == "DELETE":
        discard(upload)
        return _tus_response(204)
    return _patch(request, upload)


def _patch(request: HttpRequest, upload: UploadSession) -> HttpResponse:
    if request.content_type != OFFSET_CONTENT_TYPE:
        return _error(415, f"Content-Type must be {OFFSET_CONTENT_TYPE}.")
    try:
        offset = int(request.headers.get("Upload-Offset", ""))
    except ValueError:
        return _error(400, "Upload-Offset is required.")
    if offset != upload.offset:
        return _error(409, "Upload-Offset does not match; ask HEAD for the current offset.")
    remaining = upload.length - upload.offset
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    if declared > remaining:
        return _error(413, "More bytes than the upload declared.")
    if declared == 0:
        return _tus_response(204, Upload_Offset=str(upload.offset))
    blob = vault.store(_Capped(request, declared))
    with transaction.atomic():
        current = UploadSession.objects.select_for_update().get(pk=upload.pk)
        if current.offset != offset or blob.plain_size == 0:
            conflict = True
        else:
            conflict = False
            UploadChunk.objects.create(
                upload=current, offset=offset, size=blob.plain_size, blob=blob
            )
            current.offset = offset + blob.plain_size
            if current.offset >= current.length:
                current.completed_at = timezone.now()
            current.save(update_fields=["offset", "completed_at"])
    if conflict:
        vault.shred(blob)
        blob.delete()
        if blob.plain_size == 0:
            return _tus_response(204, Upload_Offset=str(offset))
        return _error(409, "Another request wrote to this upload first.")
    return _tus_response(204, Upload_Offset=str(current.offset))


class ChunkStream(io.RawIOBase):
    """A seekable read-only file over an upload's encrypted chunks, decrypted on demand."""

    def __init__(self, chunks: list[UploadChunk]) -> None:
        super().__init__()
        self.chunks = chunks
        self.size = sum(c.size for c in chunks)
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        if self.pos >= self.size or not len(view):
            return 0
        for chunk in self.chunks:
            if chunk.offset <= self.pos < chunk.offset + chunk.size:
                start = self.pos - chunk.offset
                stop = min(chunk.size, start + len(view))
                data = vault.read_bytes(chunk.blob, start, stop)
                view[: len(data)] = data
                self.pos += len(data)
                return len(data)
        return 0


def open_upload(upload: UploadSession) -> io.BufferedReader:
    """Return a buffered, seekable plaintext stream of a complete upload."""
    chunks = list(upload.chunks.select_related("blob").order_by("offset"))
    return io.BufferedReader(ChunkStream(chunks), buffer_size=1 << 20)


def discard(upload: UploadSession) -> None:
    """Shred an upload's staged chunks and forget the upload."""
    for chunk in upload.chunks.select_related("blob"):
        blob = chunk.blob
        chunk.delete()
        vault.shred(blob)
        blob.delete()
    upload.delete()


def discard_stale(older_than: timedelta = timedelta(days=2)) -> int:
    """Shred uploads abandoned before completion or ingest; return how many were dropped."""
    cutoff = timezone.now() - older_than
    stale = UploadSession.objects.filter(created_at__lt=cutoff, ingested_at__isnull=True)
    count = 0
    for upload in stale:
        discard(upload)
        count += 1
    UploadBatch.objects.filter(
        created_at__lt=cutoff, state=UploadBatch.State.OPEN, uploads__isnull=True
    ).delete()
    return count
