"""The DICOM header of one stored file as rows for the viewer's tag panel, read from the vault.

Only the header is decrypted and parsed (its first 64 KiB, more when it is longer); pixel data
is never read. Values are shortened and stripped of control characters; binary values are
given by their length.
"""

from __future__ import annotations

import io
import re
import struct
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

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


def tag_rows(ds: Dataset, depth: int = 0) -> list[dict[str, Any]]:
    """Return the file meta and dataset elements as rows, sequence items indented."""
    rows: list[dict[str, Any]] = []
    elements = list(ds.file_meta) if depth == 0 and hasattr(ds, "file_meta") else []
    for element in [*elements, *ds]:
        if len(rows) >= MAX_ROWS:
            break
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
