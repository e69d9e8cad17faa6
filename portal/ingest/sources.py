"""Where ingested bytes come from: files, folders, ZIP members and uploads, all as streams.

Nothing here extracts to disk: a ZIP member is read straight from the archive into the vault.
"""

from __future__ import annotations

import lzma
import os
import stat
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from portal.ingest.sniff import TAIL_BYTES, Rejected, is_zip

# Methods zipfile decompresses; anything else (Deflate64, PPMd, ...) is refused by name.
ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
OTHER_ZIP_METHODS = {6: "Implode", 9: "Deflate64", 93: "Zstandard", 95: "XZ", 98: "PPMd"}
# The reason given for a file over the size limit (callers with a tighter limit reword it).
TOO_LARGE = "file is larger than allowed"


class LimitExceeded(Exception):
    """More bytes arrived than the file's or the archive's limit allows."""


@dataclass
class Entry:
    """One file to ingest: its display name, declared size and how to open it."""

    name: str
    size: int | None
    open: Callable[[], AbstractContextManager[BinaryIO]]
    in_archive: bool = False


@dataclass
class Refused:
    """A file or archive refused before it was opened for ingest."""

    name: str
    reason: str


class Budget:
    """Bytes an archive may still expand to, shared by its members (ZIP-bomb guard)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        with self._lock:
            self.used += n
        if self.used > self.limit:
            raise LimitExceeded("archive expands beyond the size limit")


class Tee:
    """Read a source once: count the bytes, enforce limits and keep the last TAIL_BYTES."""

    def __init__(self, src: BinaryIO, limit: int) -> None:
        self.src = src
        self.limit = limit
        self.count = 0
        self._prev = b""
        self._last = b""

    def _account(self, data: bytes | memoryview) -> None:
        self.count += len(data)
        if self.count > self.limit:
            raise LimitExceeded(TOO_LARGE)
        if len(data) >= TAIL_BYTES:
            self._prev, self._last = b"", bytes(data[-TAIL_BYTES:])
        elif data:
            self._prev, self._last = self._last, bytes(data)

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.src.read(n if n is not None and n >= 0 else 1 << 20)
        except OSError:
            raise Rejected("file could not be read") from None
        self._account(data)
        return data

    def readinto(self, view: memoryview) -> int:
        """Fill view straight from the source, sparing the vault a copy of every segment."""
        readinto = getattr(self.src, "readinto", None)
        if readinto is None:
            data = self.read(len(view))
            view[: len(data)] = data
            return len(data)
        try:
            n = readinto(view) or 0
        except OSError:
            raise Rejected("file could not be read") from None
        self._account(view[:n])
        return n

    def read_exact(self, n: int) -> bytes:
        """Read up to n bytes, short only at the end of the source."""
        parts, got = [], 0
        while got < n:
            chunk = self.read(n - got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    @property
    def tail(self) -> bytes:
        return (self._prev + self._last)[-TAIL_BYTES:]


class Chain:
    """A stream of already-read head bytes followed by the rest of a Tee."""

    def __init__(self, head: bytes, rest: Tee) -> None:
        self.head = memoryview(head)
        self.rest = rest

    def readinto(self, view: memoryview) -> int:
        if not self.head:
            return self.rest.readinto(view)
        n = min(len(view), len(self.head))
        view[:n] = self.head[:n]
        self.head = self.head[n:]
        if n < len(view):
            n += self.rest.readinto(view[n:])
        return n

    def read(self, n: int = -1) -> bytes:
        buf = bytearray(n if n is not None and n >= 0 else len(self.head) + (1 << 20))
        got = self.readinto(memoryview(buf))
        return bytes(buf[:got])


def _open_file(path: Path) -> Callable[[], AbstractContextManager[BinaryIO]]:
    def opener() -> AbstractContextManager[BinaryIO]:
        # O_NOFOLLOW: a symlink swapped in after the walk is refused, not followed.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        return os.fdopen(fd, "rb")

    return opener


def _head(path: Path) -> bytes:
    with _open_file(path)() as f:
        return f.read(4)


def walk(path: Path) -> Iterator[Entry | Refused | tuple[str, Path]]:
    """Yield the files under path (itself if a file), skipping symlinks; ZIPs as (name, path)."""
    path = Path(path)
    if path.is_symlink():
        yield Refused(path.name, "symbolic links are not followed")
        return
    if path.is_file():
        yield from _file_entry(path, path.name)
        return
    yield from _walk_dir(path, "")


def _walk_dir(folder: Path, prefix: str) -> Iterator[Entry | tuple[str, Path]]:
    try:
        children = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for child in children:
        if child.is_symlink():
            continue
        rel = f"{prefix}{child.name}"
        if child.is_dir(follow_symlinks=False):
            yield from _walk_dir(Path(child.path), rel + "/")
        elif child.is_file(follow_symlinks=False):
            yield from _file_entry(Path(child.path), rel)


def _file_entry(full: Path, rel: str) -> Iterator[Entry | tuple[str, Path]]:
    info = full.lstat()
    if not stat.S_ISREG(info.st_mode):
        return
    if is_zip(_head(full)):
        yield rel, full
    else:
        yield Entry(rel, info.st_size, _open_file(full))


def upload_entry(name: str, fileobj: BinaryIO) -> Entry:
    """Wrap an uploaded file object (read/seek/tell only) as an entry."""

    def opener() -> AbstractContextManager[BinaryIO]:
        fileobj.seek(0)
        return nullcontext(fileobj)

    return Entry(clean_name(name), None, opener)


class Seekable:
    """Expose read/seek/tell of an upload as the full file interface zipfile expects."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self.fileobj = fileobj

    def read(self, n: int = -1) -> bytes:
        return self.fileobj.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fileobj.seek(offset, whence)

    def tell(self) -> int:
        return self.fileobj.tell()

    def seekable(self) -> bool:
        return True


def clean_name(name: str) -> str:
    """Return a display name without control characters, at most 255 characters."""
    cleaned = "".join(c for c in str(name) if c.isprintable()).replace("\\", "/").strip()
    return (cleaned or "unnamed")[-255:]


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "archive member has an absolute path"
    if ".." in parts:
        return "archive member path leaves the archive (..)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "archive member is a symbolic link"
    if info.flag_bits & 0x1:
        return "archive member is encrypted"
    if info.compress_type not in ZIP_METHODS:
        method = OTHER_ZIP_METHODS.get(info.compress_type, f"method {info.compress_type}")
        return f"archive member uses unsupported compression ({method})"
    return None


def zip_entries(
    archive_name: str,
    fileobj: BinaryIO,
    *,
    max_members: int,
    max_bytes: int,
    max_file_bytes: int,
) -> Iterator[Entry | Refused]:
    """Yield the members of a ZIP as entries, refusing unsafe ones and oversize archives."""
    try:
        archive = zipfile.ZipFile(fileobj)
        members = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        yield Refused(archive_name, "damaged ZIP archive")
        return
    if len(members) > max_members:
        yield Refused(archive_name, f"archive has more than {max_members} files")
        return
    if sum(i.file_size for i in members) > max_bytes:
        yield Refused(archive_name, "archive expands beyond the size limit")
        return
    budget = Budget(max_bytes)
    for info in members:
        name = f"{archive_name}/{clean_name(info.filename)}"
        problem = _member_problem(info)
        if problem is None and info.file_size > max_file_bytes:
            problem = TOO_LARGE
        if problem is not None:
            yield Refused(name, problem)
            continue

        def opener(info: zipfile.ZipInfo = info) -> AbstractContextManager[BinaryIO]:
            try:
                member = archive.open(info)
            except (zipfile.BadZipFile, EOFError):
                raise Rejected("archive member is damaged (bad local header)") from None
            except NotImplementedError:
                raise Rejected("archive member uses an unsupported ZIP feature") from None
            return _BudgetedMember(member, budget)

        yield Entry(name, info.file_size, opener, in_archive=True)


@contextmanager
def _damage_rejected() -> Iterator[None]:
    """Turn what zipfile raises for damaged member data into Rejected."""
    try:
        yield
    except zipfile.BadZipFile:
        raise Rejected("archive member is damaged (CRC or size mismatch)") from None
    except (zlib.error, lzma.LZMAError):
        raise Rejected("archive member is damaged (invalid compressed data)") from None
    except EOFError:
        raise Rejected("archive member is damaged (truncated)") from None
    except OSError:
        # bz2 reports bad data as OSError; a failing read of the archive itself lands here
        # too, and either way only this member is lost.
        raise Rejected("archive member is damaged or unreadable") from None


class _BudgetedMember:
    """A ZIP member stream that charges every byte read to the archive's budget.

    Damaged data turns into Rejected wherever it is met, even deep in the member while
    the vault is writing it, so only this member is refused and not the whole batch.
    """

    def __init__(self, member: BinaryIO, budget: Budget) -> None:
        self.member = member
        self.budget = budget

    def read(self, n: int = -1) -> bytes:
        with _damage_rejected():
            data = self.member.read(n)
        self.budget.take(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        # Seeking a compressed member decompresses up to the new position.
        with _damage_rejected():
            return self.member.seek(offset, whence)

    def tell(self) -> int:
        return self.member.tell()

    def __enter__(self) -> _BudgetedMember:
        return self

    def __exit__(self, *exc: object) -> None:
        self.member.close()
