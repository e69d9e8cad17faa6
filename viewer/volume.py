"""Volumes for multiplanar views: sort slices, stack, cut planes, and a bounded pixel cache.

Pure module (numpy, pydicom datasets); no Django. Nothing here writes to disk.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable

import numpy as np
from pydicom.dataset import Dataset


def slice_position(ds: Dataset) -> float:
    """Return the slice's position along its normal, the key to sort a series into a volume."""
    orientation = [float(v) for v in ds.ImageOrientationPatient]
    normal = np.cross(orientation[:3], orientation[3:])
    return float(np.dot(normal, [float(v) for v in ds.ImagePositionPatient]))


def build_volume(slices: Iterable[np.ndarray]) -> np.ndarray:
    """Stack equally sized 2D slices, in the caller's order, into a (z, y, x) volume."""
    planes = [np.asarray(s) for s in slices]
    if not planes:
        raise ValueError("A volume needs at least one slice.")
    shape = planes[0].shape
    if len(shape) != 2 or any(p.shape != shape for p in planes):
        raise ValueError("All slices of a volume must be 2D and the same size.")
    return np.stack(planes)


PLANES = ("axial", "coronal", "sagittal")


def plane_size(volume: np.ndarray, plane: str) -> int:
    """Return how many images the plane has, for the viewer's slider."""
    return volume.shape[PLANES.index(plane)]


def reformat(volume: np.ndarray, plane: str, index: int, z_ascending: bool = True) -> np.ndarray:
    """Cut one plane; z_ascending means volume[0] is the most inferior slice, put at the bottom."""
    if plane not in PLANES:
        raise ValueError("plane must be axial, coronal or sagittal.")
    axis = PLANES.index(plane)
    if not 0 <= index < volume.shape[axis]:
        raise IndexError("Slice index is outside the volume.")
    if plane == "axial":
        return volume[index]
    cut = volume[:, index, :] if plane == "coronal" else volume[:, :, index]
    return cut[::-1] if z_ascending else cut


def plane_spacing(
    plane: str, pixel_spacing: tuple[float, float], slice_spacing: float
) -> tuple[float, float]:
    """Return (row, col) spacing in mm of a reformatted image so the browser scales it."""
    row, col = float(pixel_spacing[0]), float(pixel_spacing[1])
    if plane == "axial":
        return row, col
    if plane == "coronal":
        return abs(slice_spacing), col
    if plane == "sagittal":
        return abs(slice_spacing), row
    raise ValueError("plane must be axial, coronal or sagittal.")


def _size(item: np.ndarray | bytes) -> int:
    return item.nbytes if isinstance(item, np.ndarray) else len(item)


class BoundedCache:
    """In-memory LRU of arrays or bytes capped by total size; safe to share between threads."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> np.ndarray | None:
        """Return the array (read-only) and mark it recently used, or None."""
        with self._lock:
            arr = self._items.get(key)
            if arr is not None:
                self._items.move_to_end(key)
            return arr

    def put(self, key: Hashable, arr: np.ndarray | bytes) -> bool:
        """Store an array as a read-only copy-free view (or bytes); False when it alone exceeds
        the budget."""
        if _size(arr) > self.max_bytes:
            return False
        if isinstance(arr, np.ndarray):
            arr = arr.view()
            arr.setflags(write=False)  # a cached volume is shared; nobody may edit it in place
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= _size(old)
            self._items[key] = arr
            self._bytes += _size(arr)
            while self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= _size(evicted)
        return True

    def get_or_build(self, key: Hashable, build: Callable[[], np.ndarray]) -> np.ndarray:
        """Return the cached array or build, store and return it."""
        arr = self.get(key)
        if arr is None:
            arr = build()
            self.put(key, arr)
        return arr

    def discard(self, key: Hashable) -> None:
        """Drop one entry, e.g. when a share is revoked."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= _size(old)

    def discard_where(self, matches: Callable[[Hashable], bool]) -> None:
        """Drop every entry whose key matches."""
        with self._lock:
            for key in [k for k in self._items if matches(k)]:
                self._bytes -= _size(self._items.pop(key))

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items


VolumeCache = BoundedCache
