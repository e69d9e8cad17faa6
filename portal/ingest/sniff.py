"""Decide what a file is from its bytes, and whether a DICOM file is sound.

Pure module (pydicom, Pillow); no Django. Rejection reasons are fixed phrases that never
carry patient data, so they can go into reports, logs and the audit trail.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image
from pydicom import dcmread
from pydicom.uid import UID

from portal.ingest.errors import NeedMore, Rejected
from portal.ingest.header import (
    JPEG_EXTENDED,
    LONG_VRS,
    UID_PATTERN,
    DatasetValues,
    DicomHeader,
    NotSimple,
    read_header,
    scan,
)

# pydicom's warnings and log lines quote element values, which can be patient data.
warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
logging.getLogger("pydicom").setLevel(logging.CRITICAL)

HEAD_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 2**20
MAX_DEFLATED_BYTES = 64 * 2**20
TAIL_BYTES = 64 * 1024

DICOM = "dicom"
PHOTO = "photo"
PDF = "pdf"

NATIVE_SYNTAXES = {
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian
}
DEFLATED_SYNTAX = "1.2.840.10008.1.2.1.99"
ENCAPSULATED_SYNTAXES = {
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    JPEG_EXTENDED,  # JPEG extended, 8-bit only (see viewer.render)
    "1.2.840.10008.1.2.4.57",  # JPEG lossless
    "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE lossless
}
ACCEPTED_SYNTAXES = NATIVE_SYNTAXES | {DEFLATED_SYNTAX} | ENCAPSULATED_SYNTAXES

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
_PIXEL_TAG = (0x7FE0, 0x0010)
_ITEM = b"\xfe\xff\x00\xe0"
_SEQ_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


def is_zip(head: bytes) -> bool:
    """Return True if the bytes start a ZIP archive (an empty one included)."""
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def classify(head: bytes) -> str:
    """Return DICOM, PHOTO or PDF from the first bytes, or raise Rejected."""
    if not head:
        raise Rejected("empty file")
    if head[128:132] == b"DICM":
        preamble = head[:128]
        if preamble.startswith(_EXECUTABLE_PREAMBLES) or preamble.lstrip().startswith(b"<"):
            raise Rejected("DICOM preamble holds an executable or markup")
        return DICOM
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PHOTO
    if head.startswith(b"%PDF-"):
        return PDF
    raise Rejected("not a DICOM file, JPEG/PNG photo or PDF")


# ---------------------------------------------------------------- photos and PDFs


@dataclass
class PhotoInfo:
    content_type: str
    width: int
    height: int


def check_photo(src: BinaryIO, max_pixels: int) -> PhotoInfo:
    """Verify a JPEG or PNG with Pillow under a pixel limit; raise Rejected if it is not sound."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    # No warnings.catch_warnings() here: it is not thread-safe, and the explicit check
    # below refuses what Pillow only warns about (between one and two times the limit).
    try:
        with Image.open(src, formats=["JPEG", "PNG"]) as im:
            fmt, (width, height) = im.format, im.size
            if width * height > max_pixels:
                raise Rejected("image has more pixels than allowed")
            if fmt == "PNG":
                im.verify()
            else:
                # Decoding at 1/8 scale walks the whole entropy-coded stream cheaply.
                im.draft("L", (max(1, width // 8), max(1, height // 8)))
                im.load()
    except Image.DecompressionBombError:
        raise Rejected("image has more pixels than allowed") from None
    except (OSError, SyntaxError, ValueError, struct.error, EOFError):
        raise Rejected("photo is damaged or not a JPEG/PNG image") from None
    content_type = "image/png" if fmt == "PNG" else "image/jpeg"
    return PhotoInfo(content_type=content_type, width=width, height=height)


def check_pdf_tail(tail: bytes) -> None:
    """Refuse a PDF whose end-of-file marker is missing (truncated or not a PDF)."""
    if b"%%EOF" not in tail[-1024:]:
        raise Rejected("PDF is truncated (no %%EOF marker at the end)")


# ---------------------------------------------------------------- DICOM headers


def parse_dicom(head: bytes, at_eof: bool) -> DicomHeader:
    """Parse the header in head; raise NeedMore if it runs past head, Rejected if unsound."""
    try:
        values, syntax, pos = scan(head)
        if syntax not in ACCEPTED_SYNTAXES:
            raise Rejected(f"unsupported transfer syntax {_safe_uid(syntax)}")
        header = read_header(values, syntax, little_endian=True)
    except NotSimple:
        header, syntax, pos = _parse_with_pydicom(head, at_eof)
        if header.checked_length:
            return header
    offset, length = _pixel_element(head, pos, UID(syntax))
    header.pixel_value_offset, header.pixel_length = offset, length
    if syntax in ENCAPSULATED_SYNTAXES:
        header.encapsulated = True
        _check_fragments(head, offset, length, at_eof)
    else:
        _check_native_length(header, length)
    return header


def _parse_with_pydicom(head: bytes, at_eof: bool) -> tuple[DicomHeader, str, int]:
    bio = io.BytesIO(head)
    try:
        ds = dcmread(bio, stop_before_pixels=True)
    # pydicom raises nearly any exception type on malformed input; all mean the same here.
    except Exception:  # noqa: BLE001
        if not at_eof and len(head) < MAX_HEADER_BYTES:
            raise NeedMore from None
        raise Rejected("broken DICOM header") from None
    meta = getattr(ds, "file_meta", None)
    syntax = str(getattr(meta, "TransferSyntaxUID", "") or "")
    if not syntax:
        raise Rejected("broken DICOM header (no transfer syntax)")
    if syntax not in ACCEPTED_SYNTAXES:
        raise Rejected(f"unsupported transfer syntax {_safe_uid(syntax)}")
    if syntax == DEFLATED_SYNTAX:
        return _parse_deflated(head, at_eof), syntax, 0
    pos = bio.tell()
    if pos + 12 > len(head):
        if not at_eof and len(head) < MAX_HEADER_BYTES:
            raise NeedMore
        raise Rejected("DICOM file has no pixel data")
    little = UID(syntax).is_little_endian
    return read_header(DatasetValues(ds), syntax, little_endian=little), syntax, pos


def _parse_deflated(head: bytes, at_eof: bool) -> DicomHeader:
    # The dataset is one zlib stream, so the pixel data can only be found by inflating it all.
    if not at_eof:
        if len(head) < MAX_DEFLATED_BYTES:
            raise NeedMore
        raise Rejected("deflated DICOM file is larger than allowed")
    try:
        ds = dcmread(io.BytesIO(head))
        pixels = ds.get("PixelData")
    except Exception:  # noqa: BLE001 - see parse_dicom
        raise Rejected("broken DICOM header") from None
    if pixels is None:
        raise Rejected("DICOM file has no pixel data")
    header = read_header(DatasetValues(ds), DEFLATED_SYNTAX, little_endian=True)
    _check_native_length(header, len(pixels))
    header.checked_length = True
    return header


def _pixel_element(head: bytes, pos: int, syntax: UID) -> tuple[int, int]:
    """Return (value offset, declared length) of the Pixel Data element starting at pos."""
    order = "<" if syntax.is_little_endian else ">"
    group, element = struct.unpack(order + "HH", head[pos : pos + 4])
    if (group, element) != _PIXEL_TAG:
        if group == 0x7FE0:
            raise Rejected("unsupported pixel data (float or double)")
        raise Rejected("DICOM file has no pixel data")
    if syntax.is_implicit_VR:
        return pos + 8, struct.unpack(order + "I", head[pos + 4 : pos + 8])[0]
    vr = head[pos + 4 : pos + 6]
    if vr in LONG_VRS:
        return pos + 12, struct.unpack(order + "I", head[pos + 8 : pos + 12])[0]
    return pos + 8, struct.unpack(order + "H", head[pos + 6 : pos + 8])[0]


def _check_native_length(header: DicomHeader, length: int) -> None:
    if length == 0xFFFFFFFF:
        raise Rejected("pixel data is encapsulated but the transfer syntax is uncompressed")
    i = header.instance
    bits = i["bits_allocated"] or 0
    pixels = i["rows"] * i["columns"] * i["frames"] * i["samples_per_pixel"]
    if bits == 1:
        expected = (pixels + 7) // 8
    elif bits % 8 == 0 and bits > 0:
        expected = pixels * bits // 8
    else:
        raise Rejected("image size elements are missing or invalid")
    if i["photometric"] == "YBR_FULL_422":
        expected = expected // 3 * 2
    if length not in (expected, expected + expected % 2):
        raise Rejected("pixel data length does not match the image size in the header")


def _check_fragments(head: bytes, offset: int, length: int, at_eof: bool) -> None:
    if length != 0xFFFFFFFF:
        raise Rejected("compressed pixel data is not encapsulated")

    def item(at: int) -> tuple[bytes, int]:
        if at + 8 > len(head):
            if not at_eof and len(head) < MAX_HEADER_BYTES:
                raise NeedMore
            raise Rejected("compressed pixel data is truncated")
        return head[at : at + 4], struct.unpack("<I", head[at + 4 : at + 8])[0]

    tag, table_length = item(offset)
    if tag != _ITEM:
        raise Rejected("compressed pixel data has no offset table")
    tag, fragment_length = item(offset + 8 + table_length)
    if tag != _ITEM or fragment_length == 0:
        raise Rejected("compressed pixel data has no fragments")


def check_stored_length(header: DicomHeader, size: int, tail: bytes) -> None:
    """Check the pixel data against the bytes that really arrived."""
    if header.checked_length:
        return
    if header.encapsulated:
        if _SEQ_END not in tail:
            raise Rejected("compressed pixel data is truncated")
    elif header.pixel_value_offset + header.pixel_length > size:
        raise Rejected("file is shorter than its pixel data declares")


def _safe_uid(value: str) -> str:
    return value if UID_PATTERN.match(value) and len(value) <= 64 else "(malformed)"
