"""Retention and erasure, reviewable: propose what is due, an admin approves, then shred.

The daily task proposes every record past its schedule (portal.compliance.rules) as a Purge
awaiting approval, unless the practice opted into automatic purging, and shreds what was
approved. A patient's erasure request takes the same path. Shredding destroys the wrapped
keys (so the files stay unreadable even when restored from an old copy), deletes the
ciphertext and the records, and leaves the Purge row and an audit event, both free of PHI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.utils import timezone

from portal.compliance import rules
from portal.compliance.stored import objects_of, shred_recorded
from portal.models import (
    Attachment,
    ComplianceSettings,
    Instance,
    Patient,
    Purge,
    Study,
)

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


def request_erasure(patient: Patient, *, by, reason: str) -> Purge:
    """Put a patient's erasure on the list awaiting an admin's approval."""
    return Purge.objects.create(
        practice=patient.practice,
        kind=Purge.Kind.ERASURE,
        patient=patient,
        record_code=patient.code,
        due_on=timezone.localdate(),
        reason=reason,
        requested_by=by,
    )


def approve(purges, *, by) -> int:
    """Approve pending purges for the next run of the daily task; return how many."""
    return Purge.objects.filter(pk__in=[p.pk for p in purges], status=Purge.Status.PENDING).update(
        status=Purge.Status.APPROVED, approved_by=by, approved_at=timezone.now()
    )


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


def execute() -> tuple[int, int]:
    """Shred every approved purge (legal holds re-checked); return (records, objects)."""
    done = objects = 0
    for purge in Purge.objects.filter(status=Purge.Status.APPROVED).select_related("patient"):
        with transaction.atomic():
            shredded = _carry_out(purge)
            if shredded < 0:
                purge.status = Purge.Status.HELD
                purge.save(update_fields=["status"])
                continue
            purge.status, purge.done_at = Purge.Status.DONE, timezone.now()
            purge.objects_shredded = shredded
            purge.study = purge.attachment = None
            purge.save(
                update_fields=["status", "done_at", "objects_shredded", "study", "attachment"]
            )
        done += 1
        objects += shredded
    return done, objects


@dataclass
class RetentionReport:
    proposed: int
    studies: int
    objects: int
    copies: int = 0


def enforce(today: date | None = None) -> RetentionReport:
    """The daily task: propose what is due, shred what was approved, and the de-identified
    copies of links that closed for good; safe to run twice."""
    from portal import deidentified_copy

    proposed = propose(today)
    done, objects = execute()
    copies = deidentified_copy.dispose_closed()
    return RetentionReport(proposed=proposed, studies=done, objects=objects, copies=copies)


def due_studies(today: date | None = None) -> list[Study]:
    """Return the studies past their schedule and not on legal hold."""
    return [d.study for d in rules.due_records(today or timezone.localdate()) if d.study]
