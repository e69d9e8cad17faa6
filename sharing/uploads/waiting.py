"""What an upload link brought, as the received page lists it: a DICOM study as one item.

A CBCT sent through a link is hundreds of files; staff decide on the study, not on each
slice. Files that belong to no study (a PDF, a photo) are items of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sharing.models import ReceivedFile

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
    return list(items.values())
