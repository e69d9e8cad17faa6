"""Stored decoded volumes: a series' voxels sealed in the vault, so reformats start in one read.

Decoding 450 compressed files takes seconds; reading one encrypted object holding their
voxels takes a fraction of that. The copy is derived data, encrypted like the originals,
made by the preview task after ingest (or by the first reformat that had to decode), replaced
when the series gains instances, and shredded with its study.

Object layout: a header (magic, format, numpy dtype, z, y, x), then the C-ordered voxels.
"""

from __future__ import annotations

import logging
import os
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from django.db import transaction

from portal import vault
from portal.models import Series, StoredObject
from viewer import dental
from viewer.layouts import Layout

logger = logging.getLogger(__name__)

# Bump when what a volume holds changes (sorting, resampling, value units), so stored copies
# made by older code are rebuilt instead of shown.
FORMAT = 2  # 2: frames sorted by per-frame position, per-frame rescale
MAGIC = b"PVOL"
_HEADER = struct.Struct("<4sB8s3I")
_DTYPES = frozenset({"<i2", "<u2", "<f4", "|u1", "|i1"})
READERS = min(4, os.cpu_count() or 1)


def volume_key(layout: Layout) -> str:
    """Return what a stored copy must match to stand for the layout's volume."""
    instances = layout.key[1] if isinstance(layout.key, tuple) else ""
    shape = f"{len(layout.slices)}x{layout.rows}x{layout.columns}"
    return f"{FORMAT}:{instances}:{shape}"


class _Source:
    """Read the header then the array's bytes, without copying the array."""

    def __init__(self, arr: np.ndarray) -> None:
        arr = np.ascontiguousarray(arr)
        header = _HEADER.pack(MAGIC, FORMAT, arr.dtype.str.encode(), *arr.shape)
        self._parts = [memoryview(header), memoryview(arr).cast("B")]

    def readinto(self, view: memoryview) -> int:
        while self._parts and not len(self._parts[0]):
            self._parts.pop(0)
        if not self._parts:
            return 0
        part = self._parts[0]
        n = min(len(view), len(part))
        view[:n] = part[:n]
        self._parts[0] = part[n:]
        return n

    def read(self, size: int = -1) -> bytes:
        out = bytearray(max(size, 0) or 1 << 20)
        n = self.readinto(memoryview(out))
        return bytes(out[:n])


def save(layout: Layout, arr: np.ndarray) -> None:
    """Seal the volume and point the series at it, replacing (and shredding) an older copy."""
    if arr.ndim != 3 or arr.dtype.str not in _DTYPES:
        return
    key = volume_key(layout)
    opening = opening_slice(layout, arr)
    sealed = vault.seal(_Source(arr))
    replaced = None
    with transaction.atomic():
        row = (
            Series.objects.select_for_update(of=("self",))
            .filter(pk=layout.pk)
            .values_list("volume_id", "volume_key")
            .first()
        )
        if row is None or row[1] == key:
            # The series went away, or another process stored this same volume first.
            keep = False
        else:
            sealed.save(force_insert=True)
            Series.objects.filter(pk=layout.pk).update(
                volume=sealed, volume_key=key, opening_slice=opening
            )
            replaced, keep = row[0], True
            layout.opening_slice = opening
        if replaced is not None:
            old = StoredObject.objects.filter(pk=replaced).first()
            if old is not None:
                transaction.on_commit(lambda: vault.shred(old))
    if not keep:
        vault.discard_unsaved(sealed)


def opening_slice(layout: Layout, arr: np.ndarray) -> int | None:
    """Return the slice a CT volume should open on: a dental scan's occlusal plane, or None.

    Derived data: a header it cannot use (a zero rescale slope, absurd spacing) gives None,
    never an error that would stop the volume being stored or its previews made.
    """
    if layout.modality != "CT" or arr.ndim != 3:
        return None
    try:
        return dental.occlusal_slice(
            arr, layout.voxel_spacing(), layout.volume_rescale(), layout.axial_mirror()
        )
    except ValueError as exc:
        logger.warning("series %s: no opening slice (%s)", layout.key[0], exc)
        return None


def load(layout: Layout) -> np.ndarray | None:
    """Return the stored volume if one matches the layout, else None (decode it instead)."""
    series = Series.objects.select_related("volume").filter(pk=layout.pk).first()
    if series is None or series.volume is None or series.volume_key != volume_key(layout):
        return None
    try:
        return _read(series.volume)
    except (vault.VaultIntegrityError, ValueError) as exc:
        # Derived data only: say so and decode from the originals instead of failing the view.
        logger.warning("stored volume %s unreadable (%s); decoding", series.volume.code, exc)
        return None


def _read(blob: StoredObject) -> np.ndarray:
    """Decrypt the object into a new array, a part per core.

    Decryption and copying release the GIL; on a loaded machine the page faults of a fresh
    quarter-gigabyte array cost as much as decrypting it, and they too run in parallel.
    """
    magic, version, dtype, z, y, x = _HEADER.unpack(vault.read_bytes(blob, 0, _HEADER.size))
    dtype = dtype.rstrip(b"\x00").decode("ascii", "replace")
    if magic != MAGIC or version != FORMAT or dtype not in _DTYPES:
        raise ValueError("not a volume of this format")
    arr = np.empty((z, y, x), dtype=np.dtype(dtype))
    target = arr.reshape(-1).view(np.uint8)
    if blob.plain_size != _HEADER.size + target.size:
        raise ValueError("volume size does not match its header")
    segment = blob.segment_size
    parts = max(1, min(READERS, blob.plain_size // segment))
    bounds = [_HEADER.size] + [segment * round(blob.plain_size * k / parts / segment)
                              for k in range(1, parts)] + [blob.plain_size]  # fmt: skip

    def fill(start: int, stop: int) -> int:
        at = start - _HEADER.size
        for chunk in vault.iter_range(blob, start, stop):
            n = len(chunk)
            target[at : at + n] = np.frombuffer(chunk, dtype=np.uint8)
            at += n
        return at - (start - _HEADER.size)

    pieces = list(zip(bounds, bounds[1:], strict=False))
    with ThreadPoolExecutor(len(pieces), thread_name_prefix="volume-read") as pool:
        filled = sum(pool.map(lambda piece: fill(*piece), pieces))
    if filled != target.size:
        raise ValueError("volume is shorter than its header says")
    return arr
