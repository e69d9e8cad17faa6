"""Decide what a file is from its bytes, and whether a DICOM file is sound.

Pure module (pydicom, Pillow); no Django. Rejection reasons are fixed phrases that never
carry patient data, so they can go into reports, logs and the audit trail.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
import zlib
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
)
from portal.ingest.part10 import (  # noqa: F401 - part of this module's interface
    _EXECUTABLE_PREAMBLES,
    is_bare_dataset,
    part10_prefix,
    preamble_is_unsafe,
)
from portal.ingest.scanner import file_meta, scan

# pydicom's warnings and log lines quote element values, which can be patient data.
warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
logging.getLogger("pydicom").setLevel(logging.CRITICAL)

HEAD_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 2**20
MAX_DEFLATED_BYTES = 64 * 2**20
# What a deflated data set may inflate to: pydicom inflates the whole stream to read any of
# it, so a megabyte of zeros could otherwise ask for gigabytes.
MAX_INFLATED_BYTES = 256 * 2**20
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
    JPEG_EXTENDED,  # JPEG extended, 8 and 12 bit (12-bit through GDCM, see viewer.codecs)
    "1.2.840.10008.1.2.4.57",  # JPEG lossless
    "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE lossless
}
RENDERED_SYNTAXES = NATIVE_SYNTAXES | {DEFLATED_SYNTAX} | ENCAPSULATED_SYNTAXES
# Kept and shared like any other file; the viewer says why it cannot show them.
VIDEO_SYNTAXES = {
    "1.2.840.10008.1.2.4.100",  # MPEG-2 main profile
    "1.2.840.10008.1.2.4.101",  # MPEG-2 high profile
    "1.2.840.10008.1.2.4.102",  # MPEG-4 AVC/H.264 high profile
    "1.2.840.10008.1.2.4.103",  # MPEG-4 AVC/H.264 BD-compatible
    "1.2.840.10008.1.2.4.104",  # MPEG-4 AVC/H.264 for 2D video
    "1.2.840.10008.1.2.4.105",  # MPEG-4 AVC/H.264 for 3D video
    "1.2.840.10008.1.2.4.106",  # MPEG-4 AVC/H.264 stereo
    "1.2.840.10008.1.2.4.107",  # HEVC/H.265 main profile
    "1.2.840.10008.1.2.4.108",  # HEVC/H.265 main 10 profile
}
# Encapsulated pixel data (fragments) whatever the codec: every standard compressed syntax
# after 1.2.840.10008.1.2.4 and RLE; anything else is read as explicit VR little endian.
_NATIVE_OR_DEFLATED = NATIVE_SYNTAXES | {DEFLATED_SYNTAX}

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
        if preamble_is_unsafe(head[:128]):
            raise Rejected("DICOM preamble holds an executable or markup")
        return DICOM
    if is_bare_dataset(head):
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


def parse_dicom(head: bytes, at_eof: bool, limits: PixelLimits | None = None) -> DicomHeader:
    """Parse the header in head; raise NeedMore if it runs past head, Rejected if unsound.

    Any transfer syntax and any SOP class is kept; only a damaged file is refused. Pixel
    limits (issue: a tiny JPEG declaring 16000 x 16000) apply before anything is decoded.
    """
    try:
        values, syntax, pos = scan(head)
        header = read_header(values, syntax, little_endian=True)
    except NotSimple:
        header, syntax, pos = _parse_with_pydicom(head, at_eof)
        if header.checked_length:
            _check_limits(header, limits)
            return header
    found = _pixel_element(head, pos, UID(syntax), at_eof)
    if found is None:
        _check_no_pixels(header)
        header.document_end = _document_end(head, pos, syntax, at_eof)
        return header
    _check_image_size(header)
    _check_limits(header, limits)
    offset, length, element = found
    header.pixel_value_offset, header.pixel_length = offset, length
    header.float_pixels = element != 0x0010
    if syntax in _NATIVE_OR_DEFLATED:
        if length == 0xFFFFFFFF:
            raise Rejected("pixel data is encapsulated but the transfer syntax is uncompressed")
        if header.float_pixels:
            _check_float_length(header, length)
        else:
            _check_native_length(header, length)
    elif length != 0xFFFFFFFF and not _is_standard_compressed(syntax):
        header.checked_length = True  # a private syntax: its layout is its own
    else:
        header.encapsulated = True
        _check_fragments(head, offset, length, at_eof)
    return header


def _is_standard_compressed(syntax: str) -> bool:
    return syntax.startswith("1.2.840.10008.1.2.4.") or syntax == "1.2.840.10008.1.2.5"


@dataclass(frozen=True)
class PixelLimits:
    """Most samples (rows x columns x samples) a frame, and rows x columns x frames x samples
    a file, may declare."""

    frame: int
    file: int


def _check_no_pixels(header: DicomHeader) -> None:
    """Accept an object without pixels (report, KOS, plan) unless it declares an image."""
    i = header.instance
    if i["rows"] or i["columns"]:
        # An image whose pixel data is missing: cut short, or never written.
        raise Rejected("DICOM file has no pixel data")
    header.has_pixels = False


def _check_image_size(header: DicomHeader) -> None:
    i = header.instance
    if not i["rows"] or not i["columns"]:
        raise Rejected("image size elements are missing or invalid")


def _check_limits(header: DicomHeader, limits: PixelLimits | None) -> None:
    if limits is None or not header.has_pixels:
        return
    if header.frame_pixels > limits.frame:
        raise Rejected("image has more pixels than allowed")
    if header.pixel_count > limits.file:
        raise Rejected("file has more pixels than allowed")


def _check_inflated_size(head: bytes) -> None:
    """Refuse a deflated data set that inflates beyond MAX_INFLATED_BYTES, before pydicom."""
    if head[128:132] != b"DICM":
        return
    try:
        _, syntax, start = file_meta(head)
    except NotSimple:
        return  # pydicom cannot walk it either: refused as a broken header
    if syntax != DEFLATED_SYNTAX:
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflated = len(inflater.decompress(head[start:], MAX_INFLATED_BYTES))
    except zlib.error:
        raise Rejected("broken DICOM header (deflated data cannot be inflated)") from None
    if inflated >= MAX_INFLATED_BYTES and (inflater.unconsumed_tail or not inflater.eof):
        raise Rejected("deflated DICOM file is larger than allowed")


def _parse_with_pydicom(head: bytes, at_eof: bool) -> tuple[DicomHeader, str, int]:
    _check_inflated_size(head)
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
    if not UID_PATTERN.match(syntax) or len(syntax) > 64:
        raise Rejected("broken DICOM header (malformed transfer syntax)")
    if syntax == DEFLATED_SYNTAX:
        return _parse_deflated(head, at_eof), syntax, 0
    pos = bio.tell()
    if pos + 12 > len(head) and not at_eof:
        if len(head) < MAX_HEADER_BYTES:
            raise NeedMore
        raise Rejected("DICOM header is larger than allowed")
    little = UID(syntax).is_little_endian if syntax in NATIVE_SYNTAXES else True
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
    header = read_header(DatasetValues(ds), DEFLATED_SYNTAX, little_endian=True)
    header.checked_length = True
    if pixels is None:
        _check_no_pixels(header)
        return header
    _check_image_size(header)
    _check_native_length(header, len(pixels))
    return header


def _pixel_element(head: bytes, pos: int, syntax: UID, at_eof: bool) -> tuple[int, int, int] | None:
    """Return (value offset, declared length, element) of the pixel element at pos, or None."""
    if pos + 12 > len(head):
        if at_eof:
            return None  # the dataset ends before any pixel data: a report, a plan, a KOS
        raise NeedMore
    little = syntax.is_little_endian if syntax in NATIVE_SYNTAXES else True
    order = "<" if little else ">"
    group, element = struct.unpack(order + "HH", head[pos : pos + 4])
    if group != 0x7FE0 or element not in (0x0008, 0x0009, 0x0010):
        return None  # elements after the last one read (padding, signatures): no pixels
    if syntax == "1.2.840.10008.1.2":
        return pos + 8, struct.unpack(order + "I", head[pos + 4 : pos + 8])[0], element
    vr = head[pos + 4 : pos + 6]
    if vr in LONG_VRS:
        return pos + 12, struct.unpack(order + "I", head[pos + 8 : pos + 12])[0], element
    return pos + 8, struct.unpack(order + "H", head[pos + 6 : pos + 8])[0], element


def _document_end(head: bytes, pos: int, syntax: str, at_eof: bool) -> int:
    """Return where the Encapsulated Document element at pos ends, 0 if none is there."""
    if pos + 4 > len(head) or struct.unpack_from("<HH", head, pos) != (0x0042, 0x0011):
        return 0
    if pos + 12 > len(head):
        if at_eof:
            raise Rejected("file is shorter than its document declares")
        raise NeedMore
    if syntax == "1.2.840.10008.1.2":
        length, at = struct.unpack_from("<I", head, pos + 4)[0], pos + 8
    elif head[pos + 4 : pos + 6] in LONG_VRS:
        length, at = struct.unpack_from("<I", head, pos + 8)[0], pos + 12
    else:
        length, at = struct.unpack_from("<H", head, pos + 6)[0], pos + 8
    if length == 0xFFFFFFFF:
        raise Rejected("encapsulated document has an undefined length")
    return at + length


def _check_float_length(header: DicomHeader, length: int) -> None:
    if length not in (header.pixel_count * 4, header.pixel_count * 8):
        raise Rejected("pixel data length does not match the image size in the header")


def _check_native_length(header: DicomHeader, length: int) -> None:
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
    """Check the pixel data (or the document) against the bytes that really arrived."""
    if header.document_end > size:
        raise Rejected("file is shorter than its document declares")
    if header.checked_length or not header.has_pixels:
        return
    if header.encapsulated:
        if _SEQ_END not in tail:
            raise Rejected("compressed pixel data is truncated")
    elif header.pixel_value_offset + header.pixel_length > size:
        raise Rejected("file is shorter than its pixel data declares")


def _safe_uid(value: str) -> str:
    return value if UID_PATTERN.match(value) and len(value) <= 64 else "(malformed)"
