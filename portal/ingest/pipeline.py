"""Read each file once, check it from its content and stream it into the vault.

Runs per file, possibly in two worker threads (AES-GCM and SHA-256 release the GIL, so one
file's encryption overlaps the other's header parsing). Records are made later, in one
transaction, by portal.ingest.records.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings
from django.core.files.storage import storages
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import F, QuerySet, Sum
from django.db.models.functions import Coalesce

from portal import vault
from portal.ingest import sniff
from portal.ingest.sniff import HEAD_BYTES, DicomHeader, NeedMore, PhotoInfo, Rejected
from portal.ingest.sources import TOO_LARGE, Chain, Entry, LimitExceeded, Tee
from portal.models import Instance, Patient, Practice, StoredObject

logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
# Room for a few batches at once (several uploads in one web process).
POOL_THREADS = 8
HIDDEN_PATIENT = (
    "This Patient ID belongs to a patient whose records you cannot see; ask a colleague who "
    "can see them to upload it"
)


class StorageFailed(Exception):
    """The vault could not store a file; the whole batch is abandoned."""


@dataclass
class Outcome:
    """What happened to one file before the records were made."""

    index: int
    name: str
    status: str  # "ok", "duplicate" or "rejected"
    reason: str = ""
    kind: str = ""
    blob: StoredObject | None = None
    header: DicomHeader | None = None
    photo: PhotoInfo | None = None
    content_type: str = ""
    pending: str = ""  # why the file waits for staff to choose its patient
    # What the file holds of the batch's state (its instance UID, its series' pixel count),
    # given back if it is refused after all: a corrected copy may follow in the same batch.
    claimed_uid: bool = False
    claimed_pixels: bool = False


class Context:
    """Limits and per-batch state shared by the workers."""

    def __init__(
        self, practice: Practice, patient: Patient | None, visible: QuerySet | None = None
    ) -> None:
        self.practice = practice
        self.patient = patient
        # The patients the uploader may see (a hygienist's assigned ones); None: all of them.
        self.visible = visible
        self._hidden: dict[str, bool] = {}
        self.max_file_bytes = settings.PORTAL_MAX_FILE_BYTES
        self.max_pixels = settings.PORTAL_MAX_IMAGE_PIXELS
        self.limits = sniff.PixelLimits(
            frame=settings.PORTAL_MAX_IMAGE_PIXELS, file=settings.PORTAL_MAX_DICOM_PIXELS
        )
        self.max_series_pixels = settings.PORTAL_MAX_SERIES_PIXELS
        # False: files are synced to disk by the caller, a batch at once (vault.make_durable).
        self.durable = True
        self._lock = threading.Lock()
        self._known: dict[str, set[str]] = {}
        self._claimed: set[str] = set()
        self._series_pixels: dict[tuple[str, str], int] = {}

    def seal(self, src) -> StoredObject | None:  # noqa: ANN001
        """Store a checked file's bytes as they are read (a subclass may keep them elsewhere)."""
        return _store(src, self.durable)

    def is_hidden_patient(self, patient_id: str) -> bool:
        """Whether the file's Patient ID names a patient the uploader may not see."""
        if self.visible is None or not patient_id:
            return False
        with self._lock:
            if patient_id not in self._hidden:
                records = Patient.objects.filter(practice=self.practice, patient_id=patient_id)
                self._hidden[patient_id] = records.exclude(pk__in=self.visible).exists()
            return self._hidden[patient_id]

    def claim_series_pixels(self, header: DicomHeader) -> None:
        """Count a file's pixels against its series' limit, stored ones included; or refuse."""
        if not header.has_pixels:
            return
        key = (header.study_uid, header.series_uid)
        with self._lock:
            total = self._series_pixels.get(key)
            if total is None:
                total = _stored_series_pixels(self.practice, *key)
            total += header.pixel_count
            if total > self.max_series_pixels:
                raise Rejected("series has more pixels than allowed")
            self._series_pixels[key] = total

    def release(self, out: Outcome) -> None:
        """Give back what a file refused after its checks held (portal.dicomnet.intake)."""
        header = out.header
        with self._lock:
            if out.claimed_uid and header is not None:
                self._claimed.discard(header.sop_uid)
            if out.claimed_pixels and header is not None:
                key = (header.study_uid, header.series_uid)
                if key in self._series_pixels:
                    self._series_pixels[key] -= header.pixel_count
        out.claimed_uid = out.claimed_pixels = False

    def is_duplicate(self, header: DicomHeader) -> bool:
        """Return True if the SOP instance is stored already or earlier in this batch."""
        with self._lock:
            known = self._known.get(header.study_uid)
            if known is None:
                # One query per study, not per file.
                known = set(
                    Instance.objects.filter(
                        practice=self.practice, series__study__study_uid=header.study_uid
                    ).values_list("sop_instance_uid", flat=True)
                )
                self._known[header.study_uid] = known
            if header.sop_uid in known or header.sop_uid in self._claimed:
                return True
            self._claimed.add(header.sop_uid)
            return False


def _stored_series_pixels(practice: Practice, study_uid: str, series_uid: str) -> int:
    size = Coalesce(F("rows"), 0) * Coalesce(F("columns"), 0) * F("frames") * F("samples_per_pixel")
    total = Instance.objects.filter(
        practice=practice,
        series__series_uid=series_uid,
        series__study__study_uid=study_uid,
    ).aggregate(total=Sum(size))["total"]
    return int(total or 0)


def _store(src: object, durable: bool = True) -> StoredObject:
    """Seal one file into the vault; its row is saved with the rest of its chunk."""
    try:
        if durable:
            return vault.seal(src)  # type: ignore[arg-type]
        return vault.seal(src, durable=False)  # type: ignore[arg-type]
    except (Rejected, LimitExceeded):
        raise
    # A storage backend can fail in many ways (OSError, botocore errors, integrity errors).
    except Exception as exc:  # noqa: BLE001
        # One line for the operator: the kind of failure, no traceback, no patient data.
        logger.error("ingest: storing a file in the vault failed: %s", type(exc).__name__)
        raise StorageFailed from exc


def save_sealed(outcomes: Iterable[Outcome]) -> None:
    """Save the rows of the objects sealed for these outcomes, in one statement."""
    StoredObject.objects.bulk_create(
        [o.blob for o in outcomes if o.blob is not None and o.blob.pk is None]
    )


def discard(objs: Iterable[StoredObject]) -> None:
    """Delete stored objects of files that were not kept: key first, then the ciphertext.

    Objects sealed but not yet saved have no row (and no key anywhere): only their file goes.
    """
    objs = [o for o in objs if o is not None]
    if not objs:
        return
    saved = [o.pk for o in objs if o.pk is not None]
    if saved:
        StoredObject.objects.filter(pk__in=saved).delete()
    storage = storages["vault"]
    for obj in objs:
        try:
            storage.delete(obj.storage_name)
        # The row and its wrapped key are gone, so the ciphertext is unreadable anyway; a store
        # that is down (any backend's error) leaves an orphan verify_storage lists and cleans.
        except Exception as exc:  # noqa: BLE001
            logger.warning(
                "ingest: could not delete discarded object %s (%s)", obj.code, type(exc).__name__
            )


def process(index: int, entry: Entry, ctx: Context) -> Outcome:
    """Check one file from its content and store it; never raise for bad input."""
    out = Outcome(index=index, name=entry.name, status="rejected")
    try:
        if entry.size is not None and entry.size > ctx.max_file_bytes:
            raise Rejected(TOO_LARGE)
        with entry.open() as src:
            _process(src, entry, ctx, out)
    except (Rejected, LimitExceeded) as exc:
        discard([out.blob] if out.blob else [])
        ctx.release(out)
        out.status, out.reason, out.blob = "rejected", str(exc), None
    except OSError:
        discard([out.blob] if out.blob else [])
        ctx.release(out)
        out.status, out.reason, out.blob = "rejected", "file could not be read", None
    return out


def _process(src, entry: Entry, ctx: Context, out: Outcome) -> None:  # noqa: ANN001
    tee = Tee(src, ctx.max_file_bytes)
    head = tee.read_exact(HEAD_BYTES)
    if entry.in_archive and sniff.is_zip(head):
        raise Rejected("archive inside an archive is not expanded")
    out.kind = sniff.classify(head)
    if out.kind == sniff.DICOM:
        at_eof = len(head) < HEAD_BYTES
        prefix = b"" if head[128:132] == b"DICM" else sniff.part10_prefix(head)
        head = prefix + head
        while True:
            try:
                header = sniff.parse_dicom(head, at_eof, ctx.limits)
                break
            except NeedMore:
                more = tee.read_exact(len(head))
                at_eof = len(more) < len(head)
                head += more
        out.pending = _check_patient(header, ctx)
        out.header = header
        if ctx.is_duplicate(header):
            # A damaged copy is refused for its damage, never reported as a duplicate.
            _drain(tee)
            sniff.check_stored_length(header, len(prefix) + tee.count, tee.tail)
            _check_size(entry, tee)
            out.status = "duplicate"
            return
        out.claimed_uid = True
        ctx.claim_series_pixels(header)
        out.claimed_pixels = True
        out.blob = ctx.seal(Chain(head, tee))
        sniff.check_stored_length(header, len(prefix) + tee.count, tee.tail)
    elif out.kind == sniff.PHOTO:
        src.seek(0)
        out.photo = sniff.check_photo(src, ctx.max_pixels)
        out.content_type = out.photo.content_type
        src.seek(0)
        tee = Tee(src, ctx.max_file_bytes)
        out.blob = ctx.seal(tee)
    else:
        out.content_type = "application/pdf"
        out.blob = ctx.seal(Chain(head, tee))
        sniff.check_pdf_tail(tee.tail)
    _check_size(entry, tee)
    out.status = "ok"


def _drain(tee: Tee) -> None:
    while tee.read(1 << 20):
        pass


def _check_size(entry: Entry, tee: Tee) -> None:
    if entry.size is not None and tee.count != entry.size:
        raise Rejected("file changed while it was read")


def _check_patient(header: DicomHeader, ctx: Context) -> str:
    """Refuse a file of another patient; return why it waits for a patient, if it does."""
    if ctx.patient is not None:
        if header.patient_id and header.patient_id != ctx.patient.patient_id:
            raise Rejected("Patient ID in the file differs from the chosen patient")
    elif not header.patient_id:
        return "the file has no Patient ID"
    elif ctx.is_hidden_patient(header.patient_id):
        raise Rejected(HIDDEN_PATIENT)
    return ""


class _Pool:
    """Long-lived worker threads, kept across chunks and batches.

    The vault keeps buffers and a digest helper per calling thread; fresh threads for every
    chunk would fault in new buffers and start new helpers each time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None or self._pid != os.getpid():
                self._executor = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="ingest")
                self._pid = os.getpid()
            return self._executor


_pool = _Pool()


def pool_thread_call(fn: Callable[[], R]) -> R:
    """Run fn in one of the long-lived worker threads and return its result (for tests)."""
    return _pool.get().submit(fn).result()


def run(
    fn: Callable[[int, T], R],
    items: Iterator[T],
    workers: int,
    meanwhile: Callable[[], object] | None = None,
) -> tuple[list[R], BaseException | None, list[T]]:
    """Apply fn to items in worker threads that share this thread's database connection.

    Stops at the first exception and returns it with the items not yet started. This
    thread calls meanwhile, if given, while the workers run.
    """
    results: list[R] = []
    lock = threading.Lock()
    numbered = enumerate(items)
    failure: list[BaseException] = []
    shared = connections[DEFAULT_DB_ALIAS]
    # As LiveServerTestCase does: the workers' queries join this thread's transaction.
    shared.inc_thread_sharing()

    def worker() -> None:
        connections[DEFAULT_DB_ALIAS] = shared
        try:
            while not failure:
                with lock:
                    try:
                        i, item = next(numbered)
                    except StopIteration:
                        return
                try:
                    results.append(fn(i, item))
                except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                    failure.append(exc)
        finally:
            # The thread outlives this batch; it must not keep the caller's connection.
            del connections[DEFAULT_DB_ALIAS]

    try:
        loops = [_pool.get().submit(worker) for _ in range(workers)]
        if meanwhile is not None:
            meanwhile()
        wait(loops)
    finally:
        shared.dec_thread_sharing()
    rest = [item for _, item in numbered]
    return results, (failure[0] if failure else None), rest
