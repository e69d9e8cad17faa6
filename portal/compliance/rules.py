"""Retention rules: when each record may be destroyed, and whether a legal hold keeps it.

A record is due when every active policy of its practice that applies to it has run out:
the counted date (the study's date, a document's upload, or the patient's last visit, as the
policy says) plus the longest `retain_years`; and, for a patient who was a minor at that date,
not before they reach `majority_age` plus `years_after_majority`. A record with no applicable
policy, or whose counted date or (for the minors rule) birth date is unknown, is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Q

from portal.models import Attachment, LegalHold, Patient, RetentionPolicy, Study


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def keep_until(
    record_date: date | None, patient: Patient, policies: list[RetentionPolicy]
) -> tuple[date | None, str]:
    """Return (first day the record may be shredded or None to keep it, the rule's name)."""
    until: date | None = None
    rule = ""
    for policy in policies:
        counted = patient.last_visit if policy.count_from == "last_visit" else record_date
        if counted is None:
            return None, policy.name
        day = add_years(counted, policy.retain_years)
        if policy.years_after_majority is not None:
            birth = patient.birth_date
            if birth is None:
                return None, policy.name
            if _age_on(birth, counted) < policy.majority_age:
                years = policy.majority_age + policy.years_after_majority
                day = max(day, add_years(birth, years))
        if until is None or day > until:
            until, rule = day, policy.name
    return until, rule


def study_policies(study: Study, policies: list[RetentionPolicy]) -> list[RetentionPolicy]:
    modalities = set(filter(None, study.modalities.split("\\")))
    return [
        p
        for p in policies
        if p.record_kind == RetentionPolicy.Kind.IMAGING
        and (not p.modality or p.modality in modalities)
    ]


@dataclass
class Due:
    practice_id: int
    patient: Patient
    study: Study | None
    attachment: Attachment | None
    due_on: date
    rule: str


def held(patient_id: int, study_id: int | None = None) -> bool:
    """Return True while a legal hold keeps the patient's records (or this study)."""
    holds = LegalHold.objects.filter(released_at__isnull=True)
    # A hold on a study holds it whichever patient the hold names.
    scope = Q(patient_id=patient_id, study__isnull=True)
    if study_id is not None:
        scope |= Q(study_id=study_id)
    if holds.filter(scope).exists():
        return True
    return study_id is not None and Study.objects.filter(pk=study_id, legal_hold=True).exists()


def _policies() -> dict[int, list[RetentionPolicy]]:
    found: dict[int, list[RetentionPolicy]] = {}
    for policy in RetentionPolicy.objects.filter(active=True):
        found.setdefault(policy.practice_id, []).append(policy)
    return found


def due_records(today: date) -> list[Due]:
    """Return the studies and stand-alone documents past their schedule and not held."""
    policies = _policies()
    found = []
    studies = Study.objects.filter(practice_id__in=list(policies), legal_hold=False)
    for study in studies.select_related("patient"):
        applicable = study_policies(study, policies[study.practice_id])
        until, rule = keep_until(study.study_date, study.patient, applicable)
        if until is not None and until <= today and not held(study.patient_id, study.pk):
            found.append(Due(study.practice_id, study.patient, study, None, until, rule))
    documents = Attachment.objects.filter(practice_id__in=list(policies), study__isnull=True)
    for doc in documents.select_related("patient"):
        applicable = [
            p for p in policies[doc.practice_id] if p.record_kind == RetentionPolicy.Kind.DOCUMENTS
        ]
        until, rule = keep_until(doc.created_at.date(), doc.patient, applicable)
        if until is not None and until <= today and not held(doc.patient_id):
            found.append(Due(doc.practice_id, doc.patient, None, doc, until, rule))
    return found
