"""The start of a DICOM file: a safe preamble, or a dataset exported without the Part 10 header.

Pure module (pydicom); no Django.
"""

from __future__ import annotations

import io
import struct

from pydicom import dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from portal.ingest.errors import Rejected
from portal.ingest.header import UID_PATTERN

# A preamble is free for applications, so it can carry a polyglot payload (PE/ELF/script/
# HTML) that runs if the file is ever opened by the wrong program. TIFF preambles are legal.
_EXECUTABLE_PREAMBLES = (
    b"MZ",
    b"\x7fELF",
    b"#!",
    b"PK\x03\x04",
    b"%PDF",
    b"\xca\xfe\xba\xbe",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
)
# NUL padding, whitespace and byte-order marks (UTF-8, UTF-16) that a browser skips.
_SKIPPABLE = b"\x00 \t\r\n\x0b\x0c"
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def preamble_is_unsafe(preamble: bytes) -> bool:
    """Return True if a preamble starts an executable, or markup after padding and BOMs."""
    if preamble.startswith(_EXECUTABLE_PREAMBLES):
        return True
    rest = preamble
    while True:
        stripped = rest.lstrip(_SKIPPABLE)
        for bom in _BOMS:
            if stripped.startswith(bom):
                stripped = stripped[len(bom) :]
        if stripped == rest:
            break
        rest = stripped
    # UTF-16 markup interleaves NULs: "<\x00h\x00..." still begins with "<".
    return rest.startswith(b"<") or rest.startswith(_EXECUTABLE_PREAMBLES)


def is_bare_dataset(head: bytes) -> bool:
    """Tell whether the bytes start a DICOM dataset written without the Part 10 header.

    Such a dataset starts with a group 0008 element (implicit or explicit VR, either byte
    order), or with the file meta group itself but no preamble.
    """
    if len(head) < 8:
        return False
    if head[:4] == b"\x02\x00\x00\x00" or head[:4] == b"\x02\x00\x01\x00":
        return head[4:6].isalpha()
    if head[:2] == b"\x08\x00":  # little endian group 0008
        element = struct.unpack("<H", head[2:4])[0]
        if element > 0x0100:
            return False
        if head[4:6].isalpha() and head[4:6].isupper():
            return True
        return struct.unpack("<I", head[4:8])[0] < 0x10000  # implicit VR length
    if head[:2] == b"\x00\x08":  # explicit VR big endian
        return head[4:6].isalpha() and head[4:6].isupper()
    return False


def part10_prefix(head: bytes) -> bytes:
    """Return the preamble and file meta to put before a dataset written without them.

    The dataset's own bytes follow unchanged, so what a device exported is kept byte for byte
    after the header PS3.10 requires.
    """
    if head[:2] == b"\x02\x00":  # the file meta is there, only the preamble is missing
        return b"\x00" * 128 + b"DICM"
    try:
        ds = dcmread(io.BytesIO(head), force=True, stop_before_pixels=True)
        implicit, little = ds.original_encoding
        sop_class, sop_instance = str(ds.SOPClassUID), str(ds.SOPInstanceUID)
    # pydicom raises nearly any exception type on malformed input; all mean the same here.
    except Exception:  # noqa: BLE001
        raise Rejected("not a DICOM file, JPEG/PNG photo or PDF") from None
    for uid in (sop_class, sop_instance):
        if not UID_PATTERN.match(uid) or len(uid) > 64:
            raise Rejected("DICOM header has a malformed SOP Instance UID")
    if implicit and little:
        syntax = "1.2.840.10008.1.2"
    elif little:
        syntax = "1.2.840.10008.1.2.1"
    elif not implicit:
        syntax = "1.2.840.10008.1.2.2"
    else:
        raise Rejected("broken DICOM header")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    out = DicomBytesIO()
    out.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=True)
    return out.getvalue()
