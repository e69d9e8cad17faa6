"""Orphaned objects: files in storage that no row can open (a crash between file and row).

A stored object's file is written (and fsynced) before its row is saved, so a process killed
in between leaves a file nobody can read: its data key lived only in the unsaved row. A file
the DICOM receiver acknowledged but has not filed yet is no orphan: its row (and key) was
committed with its receipt before the answer, and recovery files it. Orphaned files are
harmless but take space; `manage.py verify_storage` reports them and deletes them
with --delete-orphans once they are older than any ingest could still be running.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.files.storage import FileSystemStorage, storages

from portal.models import StoredObject


@dataclass(frozen=True)
class StoredFile:
    name: str
    modified: datetime


def _files() -> Iterator[StoredFile]:
    storage = storages["vault"]
    if isinstance(storage, FileSystemStorage):
        root = storage.location
        for folder, _dirs, names in os.walk(root):
            for name in names:
                path = os.path.join(folder, name)
                modified = datetime.fromtimestamp(os.lstat(path).st_mtime, tz=UTC)
                yield StoredFile(os.path.relpath(path, root).replace(os.sep, "/"), modified)
        return
    for item in storage.bucket.objects.filter(Prefix=storage.location or ""):
        yield StoredFile(item.key, item.last_modified)


def orphans(older_than: timedelta = timedelta(hours=1)) -> list[StoredFile]:
    """Return files no live row points at, last written more than `older_than` ago."""
    cutoff = datetime.now(tz=UTC) - older_than
    live = set(
        StoredObject.objects.filter(wrapped_key__isnull=False).values_list(
            "storage_name", flat=True
        )
    )
    return [f for f in _files() if f.name not in live and f.modified <= cutoff]


def delete(files: list[StoredFile]) -> int:
    """Delete the given orphaned files; return how many went."""
    storage = storages["vault"]
    for item in files:
        storage.delete(item.name)
    return len(files)
