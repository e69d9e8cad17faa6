"""The DICOM header of one stored file as rows for the viewer's tag panel, read from the vault.

Only the header is decrypted and parsed (its first 64 KiB, more when it is longer); pixel data
is never read. Values are shortened and stripped of control characters; binary values are
given by their length.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Iterator
from typing import Any

import pydicom
from pydicom.datadict import dictionary_description
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.tag import BaseTag, Tag

from portal import vault

HEAD = 1 << 16
MAX_VALUE = 160
MAX_ROWS = 2000
_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class HeaderError(Exception):
    """The stored file's header cannot be read as DICOM."""


def read_header(blob: Any, specific_tags: list[str] | None = None) -> Dataset:
    """Return the dataset of a stored DICOM file without its pixel data.

    `blob` is a StoredObject (or a row with the same columns). Raises HeaderError when the
    file is not readable DICOM, and the vault's integrity error when it is damaged.
    """
    size = blob.plain_size
    limit = min(HEAD, size)
    while True:
        fp = io.BytesIO(vault.read_bytes(blob, 0, limit))
        try:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, specific_tags=specific_tags)
            # A parse that ran to the end of a partial read may have missed elements.
            if limit >= size or fp.tell() < limit:
                return ds
        except (InvalidDicomError, OSError, ValueError, TypeError, EOFError, struct.error) as exc:
            if limit >= size:
                raise HeaderError(exc.__class__.__name__) from None
        limit = min(limit * 16, size)


def _name(tag: BaseTag) -> str:
    if tag.is_private:
        return "Private tag"
    try:
        return dictionary_description(tag)
    except KeyError:
        return "Unknown tag"


def _value(element: Any) -> str:
    if element.VR in _BINARY_VRS or element.keyword in ("PixelData", "FloatPixelData"):
        length = len(element.value) if element.value is not None else 0
        return f"({length} bytes)"
    try:
        text = str(element.value) if element.value is not None else ""
    except (ValueError, TypeError, UnicodeError):
        text = "(cannot be shown)"
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


UNREADABLE = "(cannot be shown: not valid for its VR)"
# What pydicom raises converting a value its VR cannot hold ("1e9999" in an IS, 6 bytes of FD).
VALUE_ERRORS = (ValueError, TypeError, ArithmeticError, struct.error, BytesLengthException)


def readable_elements(ds: Dataset) -> Iterator[tuple[Any, Any]]:
    """Yield (tag, element) for each element, element None where its value cannot be read.

    pydicom converts a value when it is first read, and a value its VR cannot hold (an IS
    of "1e9999", an FD of 6 bytes) raises then. The error's text may quote the raw bytes,
    which can be patient data: it is never kept.
    """
    for tag in list(ds.keys()):
        try:
            element = ds[tag]
        except VALUE_ERRORS:
            element = None
        yield tag, element


def drop_unreadable(ds: Dataset) -> int:
    """Remove the elements whose values cannot be read, in sequences too; return how many."""
    dropped = 0
    for tag, element in readable_elements(ds):
        if element is None:
            del ds[tag]
            dropped += 1
        elif element.VR == "SQ":
            for item in element.value or []:
                dropped += drop_unreadable(item)
    return dropped


def tag_rows(ds: Dataset, depth: int = 0) -> list[dict[str, Any]]:
    """Return the file meta and dataset elements as rows, sequence items indented."""
    rows: list[dict[str, Any]] = []
    meta = ds.file_meta if depth == 0 and getattr(ds, "file_meta", None) is not None else None
    found = [*(readable_elements(meta) if meta is not None else ()), *readable_elements(ds)]
    for raw_tag, element in found:
        if len(rows) >= MAX_ROWS:
            break
        if element is None:
            tag = Tag(raw_tag)
            holder = meta if meta is not None and tag in meta else ds
            vr = getattr(holder.get_item(raw_tag) if tag in holder else None, "VR", None) or ""
            rows.append({"tag": f"({tag.group:04X},{tag.element:04X})", "name": _name(tag),
                         "vr": str(vr), "value": UNREADABLE, "depth": depth})  # fmt: skip
            continue
        tag = f"({element.tag.group:04X},{element.tag.element:04X})"
        name = element.name if element.name else "Private tag"
        if element.VR == "SQ":
            items = element.value or []
            rows.append(
                {
                    "tag": tag,
                    "name": name,
                    "vr": "SQ",
                    "value": f"{len(items)} item(s)",
                    "depth": depth,
                }
            )
            if depth < 2:
                for item in items[:20]:
                    rows.extend(tag_rows(item, depth + 1))
            continue
        rows.append(
            {
                "tag": tag,
                "name": name,
                "vr": str(element.VR),
                "value": _value(element),
                "depth": depth,
            }
        )
    return rows
