"""Retention and erasure, reviewable: propose what is due, an admin approves, then shred.

The daily task proposes every record past its schedule (portal.compliance.rules) as a Purge
awaiting approval, unless the practice opted into automatic purging, and shreds what was
approved. A patient's erasure request takes the same path. Shredding destroys the wrapped
keys (so the files stay unreadable even when restored from an old copy), deletes the
ciphertext and the records, and leaves the Purge row and an audit event, both free of PHI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.utils import timezone

import audit
from audit.models import Action
from portal.compliance import rules
from portal.compliance.stored import objects_of, shred_recorded
from portal.models import (
    Attachment,
    ComplianceSettings,
    Instance,
    LegalHold,
    Patient,
    Purge,
    Study,
)

logger = logging.getLogger(__name__)
OPEN = (Purge.Status.PENDING, Purge.Status.APPROVED)


def _scrub_patient_if_empty(patient: Patient) -> None:
    """Keep the row the audit trail points at, without anything that identifies the person."""
    if patient.studies.exists() or patient.attachments.exists():
        return
    patient.name = "Removed by retention"
    patient.patient_id = f"removed-{patient.code}"
    patient.birth_date = None
    patient.email = ""
    patient.sex = ""
    patient.last_visit = None
    patient.save()
    patient.assigned_staff.clear()


def _with_copies(studies: list[Study]) -> list[Study]:
    """The studies and every de-identified copy made of them for links, copies first."""
    found, todo = {s.pk: s for s in studies}, list(studies)
    while todo:
        copies = Study.objects.filter(shares__source_study__in=todo).distinct()
        todo = [c for c in copies if c.pk not in found]
        found.update((c.pk, c) for c in todo)
    return list(reversed(found.values()))


def lock_links_of(studies: list[Study]) -> list[Study]:
    """Lock every share link of the studies and of their copies; return them, copies first.

    Taken before anything is shredded or recorded: each shred records an audit event, which
    holds the audit head to the end of the transaction, and the lock order puts links first.
    """
    from sharing.models import ShareLink

    every = _with_copies(studies)
    _locked(ShareLink.objects.filter(study__in=[s.pk for s in every]))
    return every


def shred_study(study: Study, reason: str = "retention") -> int:
    """Crypto-shred one study, and the de-identified copies made of it for links, and remove
    their records; return the number of objects shredded."""
    with transaction.atomic():
        return sum(_shred_one(s, reason) for s in lock_links_of([study]))


def _shred_one(study: Study, reason: str) -> int:
    from sharing.models import ShareLink

    patient = study.patient
    with transaction.atomic():
        # Rows locked in the lock order (links, then the study and what hangs on it, the audit
        # head last) and only then the objects listed: a download plan, thumbnail or volume
        # being stored meanwhile is either listed here or waits, finds the study gone and is
        # discarded. Listing first left such an object readable with nothing pointing at it.
        links = _locked(ShareLink.objects.filter(study=study))
        if not _locked(Study.objects.filter(pk=study.pk)):
            return 0  # shredded meanwhile
        _locked(study.series.all())
        attachments = list(Attachment.objects.select_for_update().filter(study=study))
        blobs = objects_of(study)
        ShareLink.objects.filter(pk__in=links).delete()
        Instance.objects.filter(series__study=study).delete()
        study.series.all().delete()
        for attachment in attachments:
            attachment.delete()
        # A released hold stays on record, naming the study by its code; one in force never
        # gets here (the purge is held) and its PROTECT keeps the study if it ever did.
        LegalHold.objects.filter(study=study, released_at__isnull=False).update(study=None)
        study.delete()
        _scrub_patient_if_empty(patient)
        return shred_recorded(study, blobs, reason)


def _locked(rows) -> list[int]:  # noqa: ANN001 - a queryset
    """Lock the rows (to the end of the transaction) and return their keys."""
    return list(rows.select_for_update(of=("self",)).values_list("pk", flat=True))


def shred_attachment(attachment: Attachment, reason: str = "retention") -> int:
    """Crypto-shred one photo or document outside a study; return the objects shredded."""
    with transaction.atomic():
        # Locked before its objects are read, as for a study: a thumbnail stored meanwhile is
        # either read here or finds the attachment gone.
        locked = Attachment.objects.select_for_update(of=("self",)).filter(pk=attachment.pk)
        attachment = locked.select_related("blob", "thumbnail").first()
        if attachment is None:
            return 0  # shredded meanwhile
        blobs = [b for b in (attachment.blob, attachment.thumbnail) if b and b.wrapped_key]
        attachment.delete()
        _scrub_patient_if_empty(attachment.patient)
        return shred_recorded(attachment, blobs, reason)


def propose(today: date | None = None) -> int:
    """Add every record now due to the list awaiting approval; return how many were added."""
    today = today or timezone.localdate()
    auto = set(
        ComplianceSettings.objects.filter(auto_purge=True).values_list("practice_id", flat=True)
    )
    added = 0
    for due in rules.due_records(today):
        record = due.study or due.attachment
        if Purge.objects.filter(record_code=record.code, status__in=OPEN).exists():
            continue
        automatic = due.practice_id in auto
        Purge.objects.create(
            practice_id=due.practice_id,
            kind=Purge.Kind.RETENTION,
            status=Purge.Status.APPROVED if automatic else Purge.Status.PENDING,
            approved_at=timezone.now() if automatic else None,
            patient=due.patient,
            study=due.study,
            attachment=due.attachment,
            record_code=record.code,
            rule=due.rule,
            due_on=due.due_on,
        )
        added += 1
    return added


def _record(request, purge: Purge, phase: str) -> None:  # noqa: ANN001
    audit.record(
        Action.PURGE,
        request=request,
        practice=purge.practice,
        patient=purge.patient,
        detail={"phase": phase, "purge": str(purge.code), "kind": purge.kind},
    )


def request_erasure(patient: Patient, *, by, reason: str, request=None) -> Purge:  # noqa: ANN001
    """Put a patient's erasure on the list awaiting an admin's approval."""
    with transaction.atomic():
        purge = Purge.objects.create(
            practice=patient.practice,
            kind=Purge.Kind.ERASURE,
            patient=patient,
            record_code=patient.code,
            due_on=timezone.localdate(),
            reason=reason,
            requested_by=by,
        )
        _record(request, purge, "requested")
    return purge


def approve(purges, *, by, request=None) -> int:  # noqa: ANN001
    """Approve pending purges for the next run of the daily task; return how many."""
    now = timezone.now()
    return _decide(
        purges, (Purge.Status.PENDING,), "approved", request,
        status=Purge.Status.APPROVED, approved_by=by, approved_at=now,
    )  # fmt: skip


def cancel(purges, *, by, request=None) -> int:  # noqa: ANN001
    """Keep the records of open purges; the access history says who decided."""
    return _decide(purges, OPEN, "cancelled", request, status=Purge.Status.CANCELLED)


def _decide(purges, open_statuses: tuple, phase: str, request, **changes) -> int:  # noqa: ANN001
    decided = 0
    with transaction.atomic():
        rows = Purge.objects.select_for_update(of=("self",)).filter(
            pk__in=[p.pk for p in purges], status__in=open_statuses
        )
        for purge in rows.select_related("practice", "patient"):
            for field, value in changes.items():
                setattr(purge, field, value)
            purge.save(update_fields=list(changes))
            _record(request, purge, phase)
            decided += 1
    return decided


def _carry_out(purge: Purge) -> int:
    if purge.kind == Purge.Kind.ERASURE:
        studies = list(Study.objects.filter(patient=purge.patient))
        if rules.held(purge.patient_id) or any(rules.held(purge.patient_id, s.pk) for s in studies):
            return -1
        objects = 0
        # Every link first (see lock_links_of): the first study's audit event holds the head.
        for study in lock_links_of(studies):
            objects += _shred_one(study, reason="erasure")
        for doc in Attachment.objects.filter(patient=purge.patient):
            objects += shred_attachment(doc, reason="erasure")
        _scrub_patient_if_empty(purge.patient)
        return objects
    if purge.study_id:
        if rules.held(purge.patient_id, purge.study_id):
            return -1
        return shred_study(purge.study)
    if purge.attachment_id:
        if rules.held(purge.patient_id):
            return -1
        return shred_attachment(purge.attachment)
    return 0


def execute() -> tuple[int, int, int]:
    """Shred every approved purge (legal holds re-checked); return (records, objects, failed)."""
    done = objects = failed = 0
    for purge in Purge.objects.filter(status=Purge.Status.APPROVED).select_related("patient"):
        try:
            shredded = _execute_one(purge)
        # One purge that fails (a store down, a record that cannot go) stays approved for the
        # next run; every other practice's purges still run. One line, no patient data.
        except Exception as exc:  # noqa: BLE001
            logger.error("retention: purge %s failed: %s", purge.code, type(exc).__name__)
            failed += 1
            continue
        if shredded >= 0:
            done += 1
            objects += shredded
    return done, objects, failed


def _execute_one(purge: Purge) -> int:
    """Carry out one approved purge; return the objects shredded, or -1 if it is held.

    The purge's row is locked and read again first: a cancel committed while the run was
    busy with earlier purges wins (the purge row, then links, then the audit head).
    """
    with transaction.atomic():
        locked = Purge.objects.select_for_update(of=("self",)).filter(
            pk=purge.pk, status=Purge.Status.APPROVED
        )
        if not list(locked.values_list("pk", flat=True)):
            return -2  # cancelled (or done) meanwhile
        shredded = _carry_out(purge)
        if shredded < 0:
            purge.status = Purge.Status.HELD
            purge.save(update_fields=["status"])
            return -1
        purge.status, purge.done_at = Purge.Status.DONE, timezone.now()
        purge.objects_shredded = shredded
        purge.study = purge.attachment = None
        purge.save(update_fields=["status", "done_at", "objects_shredded", "study", "attachment"])
    return shredded


@dataclass
class RetentionReport:
    proposed: int
    studies: int
    objects: int
    copies: int = 0
    failed: int = 0  # purges that raised: kept approved for the next run, one log line each


def enforce(today: date | None = None) -> RetentionReport:
    """The daily task: propose what is due, shred what was approved, and the de-identified
    copies of links that closed for good; safe to run twice."""
    from portal import deidentified_copy

    proposed = propose(today)
    done, objects, failed = execute()
    copies = deidentified_copy.dispose_closed()
    return RetentionReport(
        proposed=proposed, studies=done, objects=objects, copies=copies, failed=failed
    )


def due_studies(today: date | None = None) -> list[Study]:
    """Return the studies past their schedule and not on legal hold."""
    return [d.study for d in rules.due_records(today or timezone.localdate()) if d.study]
