"""What an upload link brought, as the received page lists it: a DICOM study as one item.

A CBCT sent through a link is hundreds of files; staff decide on the study, not on each
slice. Files that belong to no study (a PDF, a photo) are items of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from django.utils import timezone

from portal.models import Patient, Study
from portal.models.imaging import fold
from sharing.models import ReceivedFile, ShareLink, UploadLink

# Sent by the received page's forms: a decision there names the files it is about.
CHOOSING = "choosing"


def _item_key(received: ReceivedFile) -> str:
    return f"study:{received.study_uid}" if received.study_uid else str(received.pk)


def chosen_files(files: Iterable[ReceivedFile], chosen: set[str]) -> list[ReceivedFile]:
    """The files the page's ticked items name: a study item names its files that were on the
    page (its value carries the last one's number), not those that arrived since."""
    shown_up_to: dict[str, int] = {}
    for value in chosen:
        if value.startswith("study:"):
            uid, _, last = value.removeprefix("study:").rpartition(":")
            if uid and last.isdigit():
                shown_up_to[uid] = int(last)
    return [
        f
        for f in files
        if str(f.pk) in chosen or (f.study_uid and f.pk <= shown_up_to.get(f.study_uid, 0))
    ]


@dataclass
class WaitingItem:
    key: str
    first: ReceivedFile
    last_pk: int = 0
    files: int = 0
    size: int = 0
    received_at: datetime | None = None
    names_in_files: list[str] = field(default_factory=list)
    # Set by look_up_records: the IDs and names the files carry, and what they meet on record.
    people: set[tuple[str, str]] = field(default_factory=set)
    other_records: list[Patient] = field(default_factory=list)
    names_other: bool = False  # names another patient: accepting leaves it waiting
    adds_to: Study | None = None  # a study of this patient already on record
    open_links: int = 0  # open whole-study links of that study

    @property
    def is_study(self) -> bool:
        return self.key.startswith("study:")

    @property
    def value(self) -> str:
        """What the item's checkbox sends (chosen_files reads it back)."""
        return f"{self.key}:{self.last_pk}" if self.is_study else self.key

    @property
    def study_description(self) -> str:
        return self.first.study_description

    @property
    def study_date(self) -> date | None:
        return self.first.study_date


def waiting_items(files: Iterable[ReceivedFile]) -> list[WaitingItem]:
    """Group a link's waiting files into items, in the order they arrived."""
    items: dict[str, WaitingItem] = {}
    for received in files:
        key = _item_key(received)
        item = items.setdefault(key, WaitingItem(key, received))
        item.last_pk = max(item.last_pk, received.pk)
        item.files += 1
        item.size += received.size
        item.received_at = max(filter(None, [item.received_at, received.created_at]))
        name = received.patient_name
        if name and name not in item.names_in_files:
            item.names_in_files.append(name)
        if received.patient_id:
            item.people.add((received.patient_id, name))
    return list(items.values())


def other_records(link: UploadLink, patient_ids: Iterable[str]) -> dict[str, Patient]:
    """The practice's patients, other than the link's, numbered with these IDs."""
    wanted = {i for i in patient_ids if i and i != link.patient.patient_id}
    if not wanted:
        return {}
    found = Patient.objects.filter(practice=link.practice, patient_id__in=wanted)
    return {p.patient_id: p for p in found.exclude(pk=link.patient_id)}


def names_another_patient(link: UploadLink, patient_id: str, name: str, others) -> bool:  # noqa: ANN001
    """Whether a file numbered patient_id and named name is another patient's of the practice:
    the ID is another record's (one of others) and the name is not the link's patient's.
    Another practice's numbering may reuse an ID of this one; the name then says whose."""
    if not patient_id or patient_id == link.patient.patient_id or patient_id not in others:
        return False
    return fold(name) != fold(link.patient.name)


def look_up_records(items: list[WaitingItem], link: UploadLink) -> None:
    """Say what the items meet on record: another patient's ID, a study already there."""
    others = other_records(link, [pid for item in items for pid, _ in item.people])
    for item in items:
        met = {others[pid] for pid, _ in item.people if pid in others}
        item.other_records = sorted(met, key=lambda p: p.patient_id)
        item.names_other = any(
            names_another_patient(link, pid, name, others) for pid, name in item.people
        )
    uids = {item.first.study_uid for item in items if item.is_study}
    if not uids:
        return
    on_record = {
        s.study_uid: s
        for s in Study.objects.filter(
            practice=link.practice, patient=link.patient, study_uid__in=uids
        )
    }
    now = timezone.now()
    for item in items:
        study = on_record.get(item.first.study_uid) if item.is_study else None
        if study is not None:
            item.adds_to = study
            # Links to chosen series or a de-identified copy do not take in new series.
            item.open_links = ShareLink.objects.filter(
                study=study, whole_study=True, revoked_at__isnull=True, expires_at__gt=now
            ).count()
