"""Retention: crypto-shred studies past their practice's schedule unless on legal hold.

A study is due when every active policy that applies to it (same practice; modality blank or
among the study's modalities) has run out: study date + the longest `retain_years`, and for
minors not before the patient reaches `minors_until_age`. Studies with no applicable policy
are kept. Shredding destroys the wrapped keys, deletes the ciphertext and the study's records,
and leaves an audit event and the shredded StoredObject rows, but no PHI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.utils import timezone

import audit
from audit.models import Action
from portal import vault
from portal.models import Attachment, Instance, Patient, RetentionPolicy, StoredObject, Study


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def keep_until(study: Study, policies: list[RetentionPolicy]) -> date | None:
    """Return the first day a study may be shredded, or None to keep it indefinitely."""
    modalities = set(filter(None, study.modalities.split("\\")))
    applicable = [p for p in policies if not p.modality or p.modality in modalities]
    if not applicable or study.study_date is None:
        return None
    until = _add_years(study.study_date, max(p.retain_years for p in applicable))
    birth = study.patient.birth_date
    for policy in applicable:
        if policy.minors_until_age is not None:
            if birth is None:
                return None
            until = max(until, _add_years(birth, policy.minors_until_age))
    return until


def due_studies(today: date | None = None) -> list[Study]:
    """Return the studies past their schedule and not on legal hold."""
    today = today or timezone.localdate()
    policies: dict[int, list[RetentionPolicy]] = {}
    for policy in RetentionPolicy.objects.filter(active=True):
        policies.setdefault(policy.practice_id, []).append(policy)
    due = []
    candidates = Study.objects.filter(
        practice_id__in=list(policies), legal_hold=False
    ).select_related("patient")
    for study in candidates:
        until = keep_until(study, policies[study.practice_id])
        if until is not None and until <= today:
            due.append(study)
    return due


def _blobs_of(study: Study) -> list[StoredObject]:
    ids = set(Instance.objects.filter(series__study=study).values_list("blob_id", flat=True))
    ids |= set(study.series.exclude(thumbnail=None).values_list("thumbnail_id", flat=True))
    for blob_id, thumb_id in Attachment.objects.filter(study=study).values_list(
        "blob_id", "thumbnail_id"
    ):
        ids.add(blob_id)
        if thumb_id:
            ids.add(thumb_id)
    return list(StoredObject.objects.filter(pk__in=ids, wrapped_key__isnull=False))


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


def shred_study(study: Study) -> int:
    """Crypto-shred one study and remove its records; return the number of objects shredded."""
    from sharing.models import ShareLink

    blobs = _blobs_of(study)
    patient = study.patient
    with transaction.atomic():
        audit.record(
            Action.SHRED,
            practice=study.practice,
            patient=patient,
            obj=study,
            detail={"objects": len(blobs), "reason": "retention"},
        )
        ShareLink.objects.filter(study=study).delete()
        attachments = list(Attachment.objects.filter(study=study))
        Instance.objects.filter(series__study=study).delete()
        study.series.all().delete()
        for attachment in attachments:
            attachment.delete()
        study.delete()
        for blob in blobs:
            vault.shred(blob)
        _scrub_patient_if_empty(patient)
    return len(blobs)


@dataclass
class RetentionReport:
    studies: int
    objects: int


def enforce(today: date | None = None) -> RetentionReport:
    """Shred every study that is due; safe to run twice."""
    studies = objects = 0
    for study in due_studies(today):
        objects += shred_study(study)
        studies += 1
    return RetentionReport(studies=studies, objects=objects)
