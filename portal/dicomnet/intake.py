"""Instances received in one association: checked, sealed and receipted as they arrive.

Each C-STORE runs the ingest pipeline's per-file checks on the bytes in memory (content,
header, pixel length, duplicates) and seals the file into the vault; nothing is written in
plain form anywhere. Before the sender hears success the file is synced and its stored
object committed with a receipt (portal.dicomnet.receipts): a sender may purge what it was
told was stored. When the association ends (released, aborted or dropped), and every
FLUSH_EVERY instances or FLUSH_SECONDS, the records of everything acknowledged are made in
one transaction, by the same code that files uploads, which takes the receipts; a study
appears complete as far as it was sent. Receipts of a receiver that died before filing are
filed by portal.dicomnet.recovery. An instance still in transit when the connection drops
never reached a handler: nothing of it is kept.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace

from django.db import IntegrityError, transaction

import audit
from audit.models import Action
from portal.dicomnet.receipts import process_name, receipts
from portal.ingest.pipeline import Context, Outcome, StorageFailed, discard, process
from portal.ingest.records import CHUNK, build
from portal.ingest.report import PENDING, STORED
from portal.ingest.sources import Entry
from portal.models import Arrival, DicomNode, DicomPeer, Patient, Receipt, StoredObject, Study
from portal.models.imaging import fold

logger = logging.getLogger(__name__)

SUCCESS = 0x0000
WARNING_COERCED = 0xB000
WARNING_CLASS_MISMATCH = 0xB007
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
# Records are filed at least this often in a long association, so a PACS that keeps one
# open for hours does not hold its studies back.
FLUSH_EVERY = 1000
# ... and at least this often (seconds), well inside recovery's grace period.
FLUSH_SECONDS = 60
_FILING = threading.Lock()
# Studies acknowledged in this process and not yet filed, by (practice, study UID): the patient
# ID they came with and how many associations hold them. The database cannot tell yet, and
# filing would refuse an instance of another patient after the sender heard it was stored.
_unfiled: dict[tuple[int, str], tuple[str, int]] = {}
_unfiled_lock = threading.Lock()
ANOTHER_PATIENT = "study belongs to another patient record"
ANOTHER_INSTANCE = "data set's SOP Instance UID is not the command's"


@dataclass(frozen=True)
class StoreResult:
    """What the sender is told about one instance."""

    status: int
    comment: str = ""


class Intake:
    """One association's instances for one practice."""

    def __init__(
        self, node: DicomNode, peer: DicomPeer | None, calling_ae: str, address: str | None
    ) -> None:
        self.node = node
        self.practice = node.practice
        self.peer = peer
        self.calling_ae = calling_ae
        self.address = address
        self.ctx = Context(self.practice, None)
        # Each file is synced with the receipts committed at the same moment (group commit).
        self.ctx.durable = False
        self.association = uuid.uuid4()
        self._lock = threading.Lock()
        self._pending: list[Outcome] = []
        self._since = 0.0
        self._count = 0
        self._closed = False
        self._patients: dict[str, Patient | None] = {}
        self._study_owner: dict[str, int | None] = {}
        self._holding: set[tuple[int, str]] = set()
        self.stored = 0
        self.studies: set[int] = set()

    # -- per instance -------------------------------------------------------------------
    def store(self, data: bytes, *, sop_class: str = "", sop_instance: str = "") -> StoreResult:
        """Check and seal one received file (preamble, meta and data set); never raise.

        sop_class and sop_instance are the command's: a data set naming another instance is
        refused (a success would name an instance the portal does not hold under that UID).
        """
        with self._lock:
            if self._closed:
                return StoreResult(OUT_OF_RESOURCES, "association already ended")
            index = self._count
            self._count += 1
        entry = Entry(f"instance {index + 1}", len(data), lambda: nullcontext(io.BytesIO(data)))
        try:
            out = process(index, entry, self.ctx)
        except StorageFailed:
            return StoreResult(OUT_OF_RESOURCES, "storage failed, send again later")
        if out.status == "rejected":
            return StoreResult(CANNOT_UNDERSTAND, out.reason)
        if sop_instance and out.header.sop_uid != sop_instance:
            return self._refused(out, StoreResult(CANNOT_UNDERSTAND, ANOTHER_INSTANCE))
        if out.status == "duplicate":
            return StoreResult(SUCCESS)
        result = self._check_owner(out) if not out.pending else StoreResult(SUCCESS)
        if result.status == CANNOT_UNDERSTAND:
            return self._refused(out, result)
        if sop_class and out.header.instance["sop_class_uid"] != sop_class:
            result = StoreResult(WARNING_CLASS_MISMATCH, "stored under the data set's SOP class")
        try:
            receipts.commit(out.blob, self._receipt(out))
        except Exception as exc:  # noqa: BLE001 - the sender hears a failure it may retry
            logger.error("dicom receiver: a receipt was not committed: %s", type(exc).__name__)
            return self._refused(
                out, StoreResult(OUT_OF_RESOURCES, "storage failed, send again later")
            )
        flush = False
        with self._lock:
            if self._closed:
                return self._refused(
                    out, StoreResult(OUT_OF_RESOURCES, "association already ended")
                )
            if not self._pending:
                self._since = time.monotonic()
            self._pending.append(out)
            flush = (
                len(self._pending) >= FLUSH_EVERY or time.monotonic() - self._since >= FLUSH_SECONDS
            )
        if flush:
            self.flush()
        return result

    def _refused(self, out: Outcome, result: StoreResult) -> StoreResult:
        """Drop a checked file the sender is told was not stored: a copy may be sent again."""
        discard([out.blob] if out.blob else [])
        self.ctx.release(out)
        return result

    def _receipt(self, out: Outcome) -> Receipt:
        return Receipt(
            practice=self.practice,
            peer=self.peer,
            calling_ae=self.calling_ae[:16],
            address=self.address,
            association=self.association,
            process=process_name(),
            name=out.name,
        )

    def _check_owner(self, out: Outcome) -> StoreResult:
        """Refuse a study filed under another patient; warn when the record differs."""
        h = out.header
        if h.patient_id not in self._patients:
            self._patients[h.patient_id] = Patient.objects.filter(
                practice=self.practice, patient_id=h.patient_id
            ).first()
        patient = self._patients[h.patient_id]
        if h.study_uid not in self._study_owner:
            self._study_owner[h.study_uid] = (
                Study.objects.filter(practice=self.practice, study_uid=h.study_uid)
                .values_list("patient_id", flat=True)
                .first()
            )
        owner = self._study_owner[h.study_uid]
        if owner is not None and (patient is None or owner != patient.pk):
            return StoreResult(CANNOT_UNDERSTAND, ANOTHER_PATIENT)
        if not self._hold_study(h.study_uid, h.patient_id):
            return StoreResult(CANNOT_UNDERSTAND, ANOTHER_PATIENT)
        if patient is not None and (
            fold(patient.name) != fold(h.patient_name or patient.name)
            or (h.birth_date and patient.birth_date and h.birth_date != patient.birth_date)
        ):
            return StoreResult(WARNING_COERCED, "filed under the practice's record for this ID")
        return StoreResult(SUCCESS)

    def _hold_study(self, study_uid: str, patient_id: str) -> bool:
        """Claim a study not yet filed for this patient ID; False if another has it."""
        key = (self.practice.pk, study_uid)
        with _unfiled_lock:
            held = _unfiled.get(key)
            if held is not None and held[0] != patient_id:
                return False
            if key not in self._holding:
                _unfiled[key] = (patient_id, (held[1] if held else 0) + 1)
                self._holding.add(key)
        return True

    def _release_studies(self) -> None:
        with _unfiled_lock:
            for key in self._holding:
                patient_id, holders = _unfiled[key]
                if holders > 1:
                    _unfiled[key] = (patient_id, holders - 1)
                else:
                    del _unfiled[key]
            self._holding.clear()

    # -- at the end ---------------------------------------------------------------------
    def flush(self) -> None:
        """File the records of everything acknowledged so far, in one transaction.

        If filing fails the receipts stay: recovery files them later.
        """
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        # One association files at a time in this process: several ending together (one
        # study sent over four) would otherwise wait on each other's rows, SQLite's lock
        # (which sleeps in steps of up to 100 ms) or PostgreSQL's unique indexes.
        with _FILING:
            filed = file_receipted(
                batch,
                self.practice,
                Receipt.objects.filter(association=self.association),
                Sender(self.peer, self.calling_ae, self.address),
            )
        self.studies |= filed.studies
        self.stored += filed.stored

    def close(self) -> None:
        """File what was acknowledged; later stores are refused. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.flush()
        finally:
            self._release_studies()  # filed now, or receipted for recovery to file
        if self.stored and self.node.notify_email:
            from portal.dicomnet.notify import tell_front_desk

            tell_front_desk(self.node, self.peer, self.calling_ae, len(self.studies), self.stored)


@dataclass(frozen=True)
class Sender:
    """Where an association's instances came from, as arrivals and the audit trail say."""

    peer: DicomPeer | None
    calling_ae: str
    address: str | None
    recovered: bool = False


@dataclass
class Filed:
    studies: set[int]
    stored: int


def file_receipted(batch: list[Outcome], practice, receipted, sender: Sender) -> Filed:  # noqa: ANN001
    """File receipted instances whose receipts are still in `receipted`, taking them.

    Every outcome's blob is a saved StoredObject with a receipt. Only instances whose
    receipts this transaction takes are filed (recovery may have taken the others); objects
    not kept (duplicates, refused) are deleted, their files once the records are committed.
    """
    for attempt in range(4):
        try:
            with transaction.atomic():
                filed, dropped, plan = _file(batch, practice, receipted, sender)
            break
        except IntegrityError:
            # Another association created the same patient, study or series meanwhile;
            # the next attempt sees its rows.
            if attempt == 3:
                raise
    discard(dropped)
    if plan is not None and (plan.series_pks or plan.attachment_pks):
        transaction.on_commit(partial(_enqueue_previews, plan.series_pks, plan.attachment_pks))
    return filed


def _file(batch: list[Outcome], practice, receipted, sender: Sender):  # noqa: ANN001, ANN202
    pks = [o.blob.pk for o in batch]
    taken: set[int] = set()
    for i in range(0, len(pks), CHUNK):
        # Recovery passes over receipts another transaction holds (the intake filing them).
        locked = receipted.select_for_update(skip_locked=sender.recovered)
        chunk = locked.filter(stored_object_id__in=pks[i : i + CHUNK])
        taken.update(chunk.values_list("stored_object_id", flat=True))
    Receipt.objects.filter(stored_object_id__in=taken).delete()
    mine = [o for o in batch if o.blob.pk in taken]
    if not mine:
        return Filed(set(), 0), [], None
    plan = build(mine, practice, None, _origin(sender.address), None)
    # Files naming no patient wait in ingest's "needs a patient" queue.
    dropped = [o.blob for o in mine if plan.status.get(o.index, ("",))[0] not in (STORED, PENDING)]
    StoredObject.objects.filter(pk__in=[b.pk for b in dropped]).delete()
    return record_arrivals(plan, mine, practice, sender), dropped, plan


def _origin(address: str | None) -> SimpleNamespace:
    # audit.record reads the client's address from a request's META; the sender has none.
    return SimpleNamespace(META={"REMOTE_ADDR": address or ""})


def record_arrivals(plan, batch: list[Outcome], practice, sender: Sender) -> Filed:  # noqa: ANN001
    counts: dict[str, int] = {}
    for o in batch:
        if plan.status.get(o.index, ("",))[0] == STORED:
            counts[o.header.study_uid] = counts.get(o.header.study_uid, 0) + 1
    studies: set[int] = set()
    for study in plan.studies:
        n = counts.get(study.study_uid, 0)
        if n:
            studies.add(study.pk)
            Arrival.objects.create(
                practice=practice,
                study=study,
                peer=sender.peer,
                calling_ae=sender.calling_ae,
                address=sender.address,
                instances=n,
                recovered=sender.recovered,
            )
    detail = {
        "via": "dicom",
        "calling_ae": sender.calling_ae,
        "device": sender.peer.name if sender.peer else "",
        "instances": sum(counts.values()),
        "studies": len(counts),
    }
    if sender.recovered:
        detail["recovered"] = True
    audit.record(Action.INGEST, request=_origin(sender.address), practice=practice, detail=detail)
    return Filed(studies, sum(counts.values()))


def _enqueue_previews(series_pks: list[int], attachment_pks: list[int]) -> None:
    from viewer.tasks import build_previews

    try:
        build_previews.delay(series_pks, attachment_pks)
    # Thumbnails are rebuilt on demand; a queue outage must not fail a stored study.
    except Exception as exc:  # noqa: BLE001
        logger.warning("dicom receiver: could not queue previews: %s", type(exc).__name__)
