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


def item_value(received: ReceivedFile) -> str:
    """The value the page's checkbox for this file's item carries."""
    return f"study:{received.study_uid}" if received.study_uid else str(received.pk)


@dataclass
class WaitingItem:
    value: str
    first: ReceivedFile
    files: int = 0
    size: int = 0
    received_at: datetime | None = None
    names_in_files: list[str] = field(default_factory=list)

    @property
    def is_study(self) -> bool:
        return self.value.startswith("study:")

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
        value = item_value(received)
        item = items.setdefault(value, WaitingItem(value, received))
        item.files += 1
        item.size += received.size
        item.received_at = max(filter(None, [item.received_at, received.created_at]))
        name = received.patient_name
        if name and name not in item.names_in_files:
            item.names_in_files.append(name)
    return list(items.values())
