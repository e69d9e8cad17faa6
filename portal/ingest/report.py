"""The per-file outcome of an ingest, as staff see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portal.models import Study

STORED = "stored"
DUPLICATE = "duplicate"
REJECTED = "rejected"
PENDING = "needs a patient"


@dataclass
class FileReport:
    """One file: its name as the user gave it, what happened, why, and what it turned out to be."""

    name: str
    status: str
    reason: str = ""
    kind: str = ""

    def line(self) -> str:
        """Return 'status  name' with the reason after a colon when there is one."""
        text = f"{self.status}  {self.name}"
        return f"{text}: {self.reason}" if self.reason else text


@dataclass
class IngestReport:
    """The outcome of one batch: every file, and the records it created or extended."""

    files: list[FileReport] = field(default_factory=list)
    studies: list[Study] = field(default_factory=list)
    series_pks: list[int] = field(default_factory=list)
    attachment_pks: list[int] = field(default_factory=list)

    def _count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def stored(self) -> int:
        return self._count(STORED)

    @property
    def duplicates(self) -> int:
        return self._count(DUPLICATE)

    @property
    def rejected(self) -> int:
        return self._count(REJECTED)

    @property
    def pending(self) -> int:
        return self._count(PENDING)

    @property
    def ok(self) -> bool:
        """Return True when no file was rejected."""
        return self.rejected == 0

    def lines(self) -> list[str]:
        """Return one line per file, in the order the files were found."""
        return [f.line() for f in self.files]

    def summary(self) -> str:
        """Return e.g. '450 stored, 0 duplicate, 1 rejected (1 study)'."""
        studies = len(self.studies)
        noun = "study" if studies == 1 else "studies"
        waiting = f", {self.pending} {PENDING}" if self.pending else ""
        return (
            f"{self.stored} stored, {self.duplicates} duplicate, {self.rejected} rejected"
            f"{waiting} ({studies} {noun})"
        )
