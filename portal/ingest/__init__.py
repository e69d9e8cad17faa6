"""Files -> records: DICOM, photos and PDFs from files, folders, ZIPs and uploads.

Every file is checked from its content and streamed into the vault; then the records of the
whole batch are created in one transaction, so a study appears only once all of its files
are stored. Files that are refused, duplicated or rolled back leave nothing in storage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from portal.ingest.pipeline import Context, Outcome, StorageFailed, discard, save_sealed
from portal.ingest.pipeline import process as _process_one
from portal.ingest.pipeline import run as _run
from portal.ingest.records import Plan, build
from portal.ingest.report import (
    DUPLICATE,
    PENDING,
    REJECTED,
    STORED,
    FileReport,
    IngestReport,
)
from portal.ingest.sources import (
    Entry,
    Refused,
    Seekable,
    clean_name,
    upload_entry,
    walk,
    zip_entries,
)
from portal.models import Patient, Practice

__all__ = [
    "DUPLICATE",
    "PENDING",
    "REJECTED",
    "STORED",
    "FileReport",
    "IngestReport",
    "build_previews_for",
    "ingest_files",
    "ingest_path",
]

logger = logging.getLogger(__name__)
STORAGE_FAILED = "not kept: storage failed, nothing of this upload was stored (try again)"
# Three, not two: a worker waiting on a read or a write leaves its core to the others.
WORKERS = 3
CHUNK_FILES = 256


def ingest_path(
    path: Path,
    *,
    practice: Practice,
    user=None,
    patient: Patient | None = None,
    request=None,
    previews: bool = True,
) -> IngestReport:
    """Ingest a file, a folder (recursively, without following symlinks) or a ZIP archive.

    previews=False leaves thumbnails to the caller (build_previews_for(report)), so that a
    command can print its report first: in laptop mode tasks run inline.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError("path does not exist")
    open_archives: list[BinaryIO] = []

    def items() -> Iterator[Entry | Refused]:
        for item in walk(path):
            if isinstance(item, tuple):
                name, full = item
                fh = open(full, "rb")  # noqa: SIM115 - closed after the batch
                open_archives.append(fh)
                yield from _zip(name, fh)
            else:
                yield item

    try:
        return _ingest(
            items(),
            practice=practice,
            user=user,
            patient=patient,
            request=request,
            previews=previews,
        )
    finally:
        for fh in open_archives:
            fh.close()


def ingest_files(
    files: Iterable[tuple[str, BinaryIO]],
    *,
    practice: Practice,
    user=None,
    patient: Patient | None = None,
    request=None,
    visible: QuerySet | None = None,
) -> IngestReport:
    """Ingest uploaded (name, file) pairs; a ZIP among them is expanded one level.

    `visible`: the patients the uploader may see; a file naming another is refused.
    """
    from portal.ingest.sniff import is_zip

    def items() -> Iterator[Entry | Refused]:
        for name, fileobj in files:
            fileobj.seek(0)
            head = fileobj.read(4)
            fileobj.seek(0)
            if is_zip(head):
                yield from _zip(clean_name(name), Seekable(fileobj))  # type: ignore[arg-type]
            else:
                yield upload_entry(name, fileobj)

    return _ingest(
        items(), practice=practice, user=user, patient=patient, request=request, visible=visible
    )


def _zip(name: str, fileobj: BinaryIO) -> Iterator[Entry | Refused]:
    return zip_entries(
        name,
        fileobj,
        max_members=settings.PORTAL_MAX_ARCHIVE_MEMBERS,
        max_bytes=settings.PORTAL_MAX_ARCHIVE_BYTES,
        max_file_bytes=settings.PORTAL_MAX_FILE_BYTES,
    )


def _ingest(
    items: Iterator[Entry | Refused],
    *,
    practice,
    user,
    patient,
    request,
    previews: bool = True,
    visible: QuerySet | None = None,
) -> IngestReport:
    ctx = Context(practice, patient, visible)

    def work(_: int, pair: tuple[int, Entry | Refused]) -> Outcome:
        index, item = pair
        if isinstance(item, Refused):
            return Outcome(index=index, name=item.name, status="rejected", reason=item.reason)
        try:
            return _process_one(index, item, ctx)
        except StorageFailed as exc:
            exc.entry_name = item.name
            raise

    numbered = enumerate(items)
    outcomes: list[Outcome] = []
    meanwhile: Callable[[], object] | None = _warm_queue
    try:
        while chunk := list(islice(numbered, CHUNK_FILES)):
            # The vault's rows are written in chunks, so that on SQLite other writers (the
            # audit trail of people viewing) wait at most one chunk, not the whole upload.
            # Workers share this connection, so their rows belong to its transaction.
            with transaction.atomic():
                done, error, rest = _run(work, iter(chunk), WORKERS, meanwhile)
                if error is None:
                    save_sealed(done)
            meanwhile = None
            outcomes.extend(done)
            if isinstance(error, StorageFailed):
                outcomes.sort(key=lambda o: o.index)
                discard(o.blob for o in outcomes)
                names = [item.name for _, item in rest] + [item.name for _, item in numbered]
                return _failed_report(outcomes, error, names, practice, user, request)
            if error is not None:
                raise error
        outcomes.sort(key=lambda o: o.index)
        # The records of the whole batch in one transaction: a study appears complete or not.
        with transaction.atomic():
            plan = _build(outcomes, practice, patient, request, user)
            kept = (STORED, PENDING)
            discard(o.blob for o in outcomes if plan.status.get(o.index, ("",))[0] not in kept)
            if previews and (plan.series_pks or plan.attachment_pks):
                transaction.on_commit(partial(_enqueue, plan.series_pks, plan.attachment_pks))
    except BaseException:
        discard(o.blob for o in outcomes)
        raise
    report = IngestReport(
        studies=plan.studies, series_pks=plan.series_pks, attachment_pks=plan.attachment_pks
    )
    for o in outcomes:
        status, reason = plan.status.get(o.index, (o.status, o.reason))
        report.files.append(FileReport(o.name, status, reason, o.kind))
    return report


def _build(outcomes: list[Outcome], practice, patient, request, user) -> Plan:
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return build(outcomes, practice, patient, request, user)
        except IntegrityError:
            # Another upload created the same patient, study or instance meanwhile; a
            # second attempt sees its rows and treats them as existing.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _warm_queue() -> None:
    """Set up the task queue client while the workers store files, not after the commit.

    Celery finalizes its app and builds its producer pool on the first message a process
    sends; for `manage.py ingest` that would add a tenth of a second after the last file.
    """
    from viewer.tasks import build_previews

    app = build_previews.app
    if app.conf.task_always_eager:
        return
    try:
        app.finalize(auto=True)
        app.amqp.producer_pool  # noqa: B018 - the attribute builds the pool
    # Only a head start: _enqueue reports any real problem with the queue.
    except Exception:  # noqa: BLE001
        logger.debug("ingest: could not prepare the task queue", exc_info=True)


def build_previews_for(report: IngestReport) -> None:
    """Queue (or, in laptop mode, build) the thumbnails of what a report stored."""
    if report.series_pks or report.attachment_pks:
        _enqueue(report.series_pks, report.attachment_pks)


def _enqueue(series_pks: list[int], attachment_pks: list[int]) -> None:
    from viewer.tasks import build_previews

    build_previews.delay(series_pks, attachment_pks)


def _failed_report(
    outcomes: list[Outcome], failure: StorageFailed, rest: list[str], practice, user, request
) -> IngestReport:
    import audit
    from audit.models import Action
    from audit.models import Outcome as AuditOutcome

    report = IngestReport()
    for o in outcomes:
        reason = o.reason if o.status == "rejected" else STORAGE_FAILED
        report.files.append(FileReport(o.name, REJECTED, reason, o.kind))
    names = [getattr(failure, "entry_name", "unnamed"), *rest]
    report.files.extend(FileReport(name, REJECTED, STORAGE_FAILED) for name in names)
    audit.record(
        Action.INGEST,
        request=request,
        user=user,
        practice=practice,
        outcome=AuditOutcome.FAILED,
        detail={"rejected": report.rejected, "reasons": {"storage failed": report.rejected}},
    )
    return report
