"""DICOM objects that are not images: what they are, and how a browser can show them.

Encapsulated PDF is shown as the PDF it holds; a Structured Report as readable text; a Key
Object Selection marks key images; video and anything else is offered as a download with
the reason it is not shown. Pure module (pydicom); no Django.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
KEY_OBJECT_SELECTION = "1.2.840.10008.5.1.4.1.1.88.59"
SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
VIDEO_SYNTAXES = {f"1.2.840.10008.1.2.4.{n}" for n in range(100, 109)}
# Containers a browser plays as they are: MPEG-4 AVC/H.264 streams (PS3.5 8.2.8).
PLAYABLE_SYNTAXES = {"1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.4.103"}

IMAGE, PDF, SR, KOS, VIDEO, OTHER = "image", "pdf", "sr", "kos", "video", "other"
MAX_SR_ITEMS = 5000


def kind_of(sop_class_uid: str, transfer_syntax_uid: str, has_pixels: bool) -> str:
    """Return what an object is for the viewer: image, pdf, sr, kos, video or other."""
    if transfer_syntax_uid in VIDEO_SYNTAXES:
        return VIDEO
    if sop_class_uid == ENCAPSULATED_PDF:
        return PDF
    if sop_class_uid == KEY_OBJECT_SELECTION:
        return KOS
    if sop_class_uid.startswith(SR_PREFIX):
        return SR
    return IMAGE if has_pixels else OTHER


def not_viewable_reason(kind: str, sop_class_name: str) -> str:
    """Return why an object is offered for download only."""
    if kind == VIDEO:
        return "it is a video; download it to play it"
    if kind == KOS:
        return "it is a list of key images, marked in their series"
    return f"it holds no image ({sop_class_name})"


def pdf_bytes(ds: Dataset) -> bytes:
    """Return the PDF an Encapsulated PDF object holds, without its padding byte."""
    data = bytes(ds.get("EncapsulatedDocument") or b"")
    length = ds.get("EncapsulatedDocumentLength")
    if length and 0 < int(length) <= len(data):
        return data[: int(length)]
    return data[:-1] if data.endswith(b"\x00") else data


def _name(item: Dataset) -> str:
    codes = item.get("ConceptNameCodeSequence")
    return str(codes[0].get("CodeMeaning", "")) if codes else ""


def _value(item: Dataset) -> str:
    kind = str(item.get("ValueType", ""))
    if kind == "TEXT":
        return str(item.get("TextValue", ""))
    if kind == "CODE" and item.get("ConceptCodeSequence"):
        return str(item.ConceptCodeSequence[0].get("CodeMeaning", ""))
    if kind == "NUM" and item.get("MeasuredValueSequence"):
        measured = item.MeasuredValueSequence[0]
        units = measured.get("MeasurementUnitsCodeSequence")
        unit = str(units[0].get("CodeValue", "")) if units else ""
        return f"{measured.get('NumericValue', '')} {unit}".strip()
    if kind in ("DATE", "TIME", "DATETIME", "UIDREF", "PNAME"):
        keyword = {"DATE": "Date", "TIME": "Time", "DATETIME": "DateTime", "UIDREF": "UID"}
        return str(item.get(keyword.get(kind, "PersonName"), ""))
    if kind in ("IMAGE", "COMPOSITE", "WAVEFORM"):
        return f"({kind.lower()} reference)"
    return ""


def sr_text(ds: Dataset) -> str:
    """Return a Structured Report's content tree as indented plain text."""
    lines: list[str] = []
    title = _name(ds)
    if title:
        lines.append(title)
        lines.append("=" * len(title))
    for key, label in (("CompletionFlag", "Completion"), ("VerificationFlag", "Verification")):
        if ds.get(key):
            lines.append(f"{label}: {ds.get(key)}")

    def walk(items, depth: int) -> None:  # noqa: ANN001
        for item in items or []:
            if len(lines) >= MAX_SR_ITEMS:
                return
            name, value = _name(item), _value(item)
            value = value.replace("\r\n", "\n").replace("\r", "\n")
            text = f"{name}: {value}" if name and value else name or value
            if text:
                indent = "  " * depth
                lines.append(indent + text.replace("\n", "\n" + indent + "  ").rstrip())
            walk(item.get("ContentSequence"), depth + 1)

    walk(ds.get("ContentSequence"), 0)
    return "\n".join(lines) + "\n"


def key_image_uids(ds: Dataset) -> list[str]:
    """Return the SOP Instance UIDs a Key Object Selection names, in its order."""
    uids: list[str] = []
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence") or []:
        for series in study.get("ReferencedSeriesSequence") or []:
            for sop in series.get("ReferencedSOPSequence") or []:
                uid = str(sop.get("ReferencedSOPInstanceUID", ""))
                if uid:
                    uids.append(uid)
    return uids
