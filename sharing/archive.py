"""Build the streamed ZIP of a share download: originals, DICOMDIR and README.

Pure module (no Django): the download view supplies members whose bytes come
from the vault, and sends `len` as Content-Length before streaming.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import zipstream.ng
from zipstream import ZipStream

from sharing.dicomdir import DicomRef, build_dicomdir, dicom_layout

__all__ = [
    "ArchiveMember",
    "DicomRef",
    "archive_extras",
    "build_dicomdir",
    "dicom_layout",
    "readme_text",
    "series_summary",
    "share_archive",
    "stream_zip",
]


@dataclass
class ArchiveMember:
    """One original file of the download; `chunks` is opened only when it is streamed."""

    arcname: str
    size: int
    crc32: int | None
    chunks: Callable[[], Iterable[bytes]] = field(repr=False)
    dicom: DicomRef | None = None
    source_id: int | None = None  # the Instance or Attachment it comes from


def series_summary(members: Sequence[ArchiveMember]) -> list[str]:
    """Return one README line per series folder: folder, modality, description, file count."""
    folders: dict[str, list[Any]] = {}
    for member in members:
        if member.dicom is None:
            continue
        folder = member.arcname.rsplit("/", 1)[0]
        entry = folders.setdefault(folder, [member.dicom, 0])
        entry[1] += 1
    lines = []
    for folder, (ref, count) in sorted(folders.items()):
        what = " - ".join(t for t in (ref.study_description, ref.series_description) if t)
        label = f"{ref.modality or 'OT'} {what}".strip()
        lines.append(f"{folder + '/':<28} {label} ({count} file{'s' if count != 1 else ''})")
    return lines


def readme_text(practice_name: str, summary_lines: list[str]) -> str:
    """Return the README.txt that tells the recipient what the download holds."""
    table = "\n".join(f"  {line}" for line in summary_lines) or "  (no DICOM series)"
    return f"""Imaging shared by {practice_name}
{"=" * (18 + len(practice_name))}

This archive holds the original image files, byte-for-byte as the practice
stored them.

DICOM/      The DICOM images, one folder per patient, study and series.
DICOMDIR    The index of the DICOM folder. To open the images, import this
            DICOMDIR (or the whole folder) into your imaging software or DICOM
            viewer; most programs offer "Import from CD/DICOMDIR".
Other folders, if any, hold photos and documents that were shared with them.

Series folders:
{table}

Keep these files safe: they contain personal health information. Store them
only on encrypted devices, do not forward them by ordinary email, and delete
them when you no longer need them.
"""


def _check_arcname(name: str) -> None:
    parts = name.split("/")
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or any(p in ("", ".", "..") for p in parts)
        or re.match(r"^[A-Za-z]:", name)
    ):
        raise ValueError("Unsafe name for an archive entry")


def _lazy(factory: Callable[[], Iterable[bytes]]) -> Iterator[bytes]:
    yield from factory()


# zipstream-ng has no way to take a known CRC-32, and computing it again costs as much as
# decrypting. Chunks of members whose CRC was stored at ingest are registered, per thread,
# while zipstream holds them: the last chunk answers the file's CRC and earlier ones 0.
# Any other buffer is computed as usual.
_known = threading.local()


def _crc32(data: Any, value: int = 0) -> int:
    entry = getattr(_known, "entry", None)
    if entry is not None and entry[0] is data:
        return entry[1]
    return zlib.crc32(data, value)


zipstream.ng.crc32 = _crc32


def _stored_crc_chunks(member: ArchiveMember) -> Iterator[bytes]:
    assert member.crc32 is not None
    sent = 0
    for chunk in member.chunks():
        if not chunk:
            continue
        sent += len(chunk)
        _known.entry = (chunk, member.crc32 & 0xFFFFFFFF if sent >= member.size else 0)
        try:
            yield chunk
        finally:
            _known.entry = None


def stream_zip(
    members: Sequence[ArchiveMember],
    extra_files: dict[str, bytes],
    *,
    sized: bool = True,
    length: int | None = None,
) -> tuple[ZipStream, int | None]:
    """Return a STORED ZipStream of the files and, when sized, its exact length in bytes.

    `length` is the length measured earlier for the same names, sizes and extra files (a
    download plan); measuring again takes as long as sending the first megabyte.
    """
    names = [*extra_files, *(m.arcname for m in members)]
    for name in names:
        _check_arcname(name)
    # Case-insensitive file systems would merge entries that differ only by case.
    if len({n.casefold() for n in names}) != len(names):
        raise ValueError("Duplicate name for an archive entry")

    zs = ZipStream(sized=sized)
    for name, data in extra_files.items():
        zs.add(data, name)
    for member in members:
        if member.crc32 is None:
            zs.add(_lazy(member.chunks), member.arcname, size=member.size)
        else:
            zs.add(_stored_crc_chunks(member), member.arcname, size=member.size)
    if not sized:
        return zs, None
    return zs, length if length is not None else len(zs)


def archive_extras(members: Sequence[ArchiveMember], practice_name: str) -> dict[str, bytes]:
    """Return the DICOMDIR (when there are DICOM members) and README.txt of a download."""
    extra = {"README.txt": readme_text(practice_name, series_summary(members)).encode()}
    if any(m.dicom for m in members):
        extra = {"DICOMDIR": build_dicomdir(members), **extra}
    return extra


def share_archive(members: Sequence[ArchiveMember], practice_name: str) -> tuple[ZipStream, int]:
    """Return the download ZIP with DICOMDIR (when there are DICOM members) and README.txt."""
    return stream_zip(members, archive_extras(members, practice_name))
