"""Files sent through an upload link: checked and sealed on arrival.

Arrival runs the ingest pipeline's per-file checks (content, header, pixel length, limits,
ZIP rules) and seals each good file in the vault, with a row saying what it is; nothing
becomes a study, series or attachment yet: staff decide (sharing.uploads.decisions).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from audit.models import Action
from portal.ingest import sniff
from portal.ingest.pipeline import Context, Outcome, discard, process
from portal.ingest.sources import (
    TOO_LARGE,
    Entry,
    Refused,
    Seekable,
    clean_name,
    upload_entry,
    zip_entries,
)
from portal.models import StoredObject
from sharing.models import ReceivedFile, ShareLink, UploadLink
from sharing.uploads import services

REFUSED_OVER_LIMIT = "not kept: this link has no room left for it"
NAME_MAX = ReceivedFile._meta.get_field("name").max_length
REASON_MAX = ReceivedFile._meta.get_field("reason").max_length


def _fit_name(name: str) -> str:
    """A ZIP's name and its member's path may be longer than a row holds: keep the end,
    which names the file."""
    return name[-NAME_MAX:]


def _entries(files: Iterable[tuple[str, BinaryIO]]) -> Iterator[Entry | Refused]:
    for name, fileobj in files:
        fileobj.seek(0)
        head = fileobj.read(4)
        fileobj.seek(0)
        if sniff.is_zip(head):
            yield from zip_entries(
                clean_name(name),
                Seekable(fileobj),  # type: ignore[arg-type]
                max_members=settings.PORTAL_MAX_ARCHIVE_MEMBERS,
                max_bytes=settings.PORTAL_MAX_ARCHIVE_BYTES,
                max_file_bytes=settings.PORTAL_MAX_FILE_BYTES,
            )
        else:
            entry = upload_entry(name, fileobj)
            entry.size = fileobj.seek(0, 2)  # known up front, as a ZIP member's is
            fileobj.seek(0)
            yield entry


def _take_room(link: UploadLink, size: int) -> bool:
    """Charge size bytes to the link's allowance; False when it would go over."""
    return bool(
        UploadLink.objects.filter(pk=link.pk, received_bytes__lte=F("max_bytes") - size).update(
            received_bytes=F("received_bytes") + size
        )
    )


def _room_left(link: UploadLink) -> int:
    row = UploadLink.objects.filter(pk=link.pk).values("max_bytes", "received_bytes").first()
    return max(0, row["max_bytes"] - row["received_bytes"]) if row else 0


@dataclass
class Received:
    """What became of a send: a row per file looked at, and how many were not looked at."""

    rows: list[ReceivedFile]
    skipped: int = 0


def receive(link: UploadLink, files: Iterable[tuple[str, BinaryIO]], request=None) -> Received:
    """Check and seal the files sent; return their ReceivedFile rows (pending or refused).

    A file is read only if it may fit the room the link has left: its size is known before
    (a ZIP member's from the archive's directory), or reading it stops at that room. A small
    archive holding large files costs no decompression and no encryption once the link is full.
    A link takes at most PORTAL_UPLOAD_LINK_MAX_FILES files (each a row, most an object in the
    vault): files past that are not looked at, only counted.
    """
    rows: list[ReceivedFile] = []
    sealed = _Sealed()
    try:
        skipped = _check_and_seal(link, files, rows, sealed)
        skipped += _save(link, rows, request, sealed)
    except BaseException:
        # Nothing was recorded: the sealed files go (their keys were never saved) and the
        # link's allowance gets back what they were charged.
        for blob in sealed.blobs:
            blob.pk = None  # a rolled-back row's number may be reused by another
        discard(sealed.blobs)
        _give_back_room(link, sealed.charged)
        raise
    return Received(rows, skipped)


@dataclass
class _Sealed:
    """The files of a send sealed so far, and what the link was charged for them."""

    blobs: list = field(default_factory=list)
    charged: int = 0


def _check_and_seal(link: UploadLink, files, rows: list, sealed: _Sealed) -> int:  # noqa: ANN001
    """Check and seal each file into rows; return how many were past the link's file limit."""
    ctx = Context(link.practice, None)
    max_file_bytes = ctx.max_file_bytes
    # Read once; each kept file's charge below keeps it current (another send to the same
    # link at once can only make it smaller, and _take_room has the last word).
    room = _room_left(link)
    sent = _AlreadySent.of(link)
    files_left = settings.PORTAL_UPLOAD_LINK_MAX_FILES - link.files.count()
    skipped = 0
    for index, item in enumerate(_entries(files)):
        if len(rows) >= files_left:
            skipped += 1  # a ZIP's member is not read to be counted
            continue
        if isinstance(item, Refused):
            rows.append(
                ReceivedFile(
                    link=link,
                    name=_fit_name(item.name),
                    state="refused",
                    reason=item.reason[:REASON_MAX],
                )  # fmt: skip
            )
            continue
        if item.size is not None and room < item.size <= max_file_bytes:
            rows.append(
                ReceivedFile(
                    link=link, name=_fit_name(item.name), state="refused", reason=REFUSED_OVER_LIMIT
                )
            )
            continue
        ctx.max_file_bytes = min(max_file_bytes, room)
        out = process(index, item, ctx)
        if out.blob is not None:
            sealed.blobs.append(out.blob)
        too_large_anyway = item.size is not None and item.size > max_file_bytes
        if out.reason == TOO_LARGE and room < max_file_bytes and not too_large_anyway:
            out.reason = REFUSED_OVER_LIMIT  # too large for the room left, not for the portal
        if sent.again(out):
            again = ReceivedFile.ALREADY_SENT
            rows.append(ReceivedFile(link=link, name=_fit_name(out.name), kind=out.kind,
                                     state="refused", reason=again))  # fmt: skip
            if out.blob is not None:
                sealed.blobs.remove(out.blob)
                discard([out.blob])
                ctx.release(out)
            continue
        # A copy of a file the practice holds is charged as a new one: a room that fell for
        # one and not the other would tell the sender what the practice holds.
        size = out.blob.plain_size if out.blob is not None else (item.size or 0)
        charged = out.status in ("ok", "duplicate")
        if charged and not _take_room(link, size):
            if out.blob is not None:
                sealed.blobs.remove(out.blob)
                discard([out.blob])
            out.status, out.reason, out.blob = "rejected", REFUSED_OVER_LIMIT, None
        elif charged:
            sent.remember(out)
            sealed.charged += size
            room -= size
        rows.append(_row(link, out, size))
    return skipped


@dataclass
class _AlreadySent:
    """What this link holds pending (earlier sends) or kept earlier in this send.

    The same file sent again waits once and is charged once; a DICOM instance is known by
    its UID (the pipeline reports a second copy in one send as a duplicate), any file by its
    content's SHA-256.
    """

    digests: set[str]
    instances: set[str]

    @classmethod
    def of(cls, link: UploadLink) -> _AlreadySent:
        pending = StoredObject.objects.filter(
            pk__in=ReceivedFile.objects.filter(link=link, state=ReceivedFile.State.PENDING)
            .exclude(blob=None)
            .values("blob")
        )
        # DICOM instances waiting, or held by the practice already, as each was sent.
        charged = ReceivedFile.objects.filter(link=link).filter(
            Q(state=ReceivedFile.State.PENDING)
            | Q(state=ReceivedFile.State.REFUSED, reason=ReceivedFile.ALREADY_HELD)
        )
        return cls(
            set(pending.values_list("sha256", flat=True)),
            set(charged.exclude(instance_uid="").values_list("instance_uid", flat=True)),
        )

    def again(self, out: Outcome) -> bool:
        """Whether out repeats a file already sent: the same bytes, or the same DICOM instance
        in other bytes (exported again), which staff would meet twice."""
        if out.header is not None and out.header.sop_uid in self.instances:
            return out.status in ("ok", "duplicate")
        return out.status == "ok" and out.blob is not None and out.blob.sha256 in self.digests

    def remember(self, out: Outcome) -> None:
        """Note a file charged in this send (kept, or a copy of one the practice holds)."""
        if out.blob is not None:
            self.digests.add(out.blob.sha256)
        if out.header is not None:
            self.instances.add(out.header.sop_uid)


def _give_back_room(link: UploadLink, size: int) -> None:
    if size:
        UploadLink.objects.filter(pk=link.pk).update(received_bytes=F("received_bytes") - size)


class LinkClosed(Exception):
    """The link was revoked, expired or locked while the files arrived: none of them is kept."""


def _save(link: UploadLink, rows: list[ReceivedFile], request, sealed: _Sealed) -> int:  # noqa: ANN001
    """Record the send's rows; return how many were left out (past the link's file limit).

    Under the link's lock, so that sends arriving at once are recorded one after another: each
    sees what the others kept. Their checks ran side by side: a file another send kept
    meanwhile becomes "already sent", and rows past the file limit are not recorded.
    """
    dropped: list[StoredObject] = []
    with transaction.atomic():
        # Staff may revoke the link while a send arrives: one or the other comes first.
        current = UploadLink.objects.select_for_update(of=("self",)).filter(pk=link.pk).first()
        if current is None or current.status != ShareLink.Status.ACTIVE:
            raise LinkClosed
        left_out = _keep_to_what_others_kept(link, rows, dropped)
        StoredObject.objects.bulk_create([r.blob for r in rows if r.blob is not None])
        ReceivedFile.objects.bulk_create(rows)
        services.record(
            Action.UPLOAD,
            link,
            request,
            received=sum(1 for r in rows if r.state == ReceivedFile.State.PENDING),
            refused=sum(1 for r in rows if r.state == ReceivedFile.State.REFUSED),
        )
    # Committed: the rows own their files and charges now, and receive() must not undo them
    # whatever happens next; only the files left out go.
    sealed.blobs.clear()
    sealed.charged = 0
    discard(dropped)
    return left_out


def _keep_to_what_others_kept(link: UploadLink, rows: list[ReceivedFile], dropped: list) -> int:
    """Turn copies of files another send kept into "already sent" rows and drop rows past the
    file limit, giving back their room; collect the dropped files' objects. Return how many
    rows were dropped. Call with the link locked."""
    kept = _AlreadySent.of(link)
    room_back = 0
    for i, row in enumerate(rows):
        copy_kept = row.blob is not None and row.blob.sha256 in kept.digests
        charged = row.state == ReceivedFile.State.PENDING or row.reason == ReceivedFile.ALREADY_HELD
        if copy_kept or (charged and row.instance_uid and row.instance_uid in kept.instances):
            if row.blob is not None:
                dropped.append(row.blob)
            room_back += row.size
            rows[i] = ReceivedFile(link=link, name=row.name, kind=row.kind, state="refused",
                                   reason=ReceivedFile.ALREADY_SENT)  # fmt: skip
    allowed = max(0, settings.PORTAL_UPLOAD_LINK_MAX_FILES - link.files.count())
    for row in rows[allowed:]:
        if row.blob is not None:
            dropped.append(row.blob)
        room_back += row.size  # what was charged for it: kept, or a copy the practice holds
    left_out = max(0, len(rows) - allowed)
    del rows[allowed:]
    _give_back_room(link, room_back)
    return left_out


def _row(link: UploadLink, out: Outcome, size: int) -> ReceivedFile:
    if out.status == "duplicate":
        return ReceivedFile(
            link=link,
            name=_fit_name(out.name),
            kind=out.kind,
            state="refused",
            reason=ReceivedFile.ALREADY_HELD,
            size=size,  # charged, as a new file is
            instance_uid=out.header.sop_uid[:64] if out.header is not None else "",
        )
    if out.status != "ok":
        return ReceivedFile(link=link, name=_fit_name(out.name), kind=out.kind, state="refused",
                            reason=out.reason[:REASON_MAX])  # fmt: skip
    row = ReceivedFile(link=link, blob=out.blob, name=_fit_name(out.name), kind=out.kind, size=size)
    if out.header is not None:
        h = out.header
        row.study_uid = h.study_uid
        row.study_description = (h.study.get("description") or "")[:200]
        row.study_date = h.study.get("study_date")
        row.patient_name = (h.patient_name or "")[:200]
        row.patient_id = (h.patient_id or "")[:64]
        row.instance_uid = h.sop_uid[:64]
    return row
