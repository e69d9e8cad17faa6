"""DICOM side of a share download: PS3.10 file names and the DICOMDIR that indexes them.

Pure module (no Django). Directory records are encoded directly (explicit VR little endian);
tests check each against pydicom's own encoding of the record it reads back.
"""

from __future__ import annotations

import datetime
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, MediaStorageDirectoryStorage, generate_uid

from viewer.tags import VALUE_ERRORS

DICOM_ROOT = "DICOM"
# PS3.10 8.2 / PS3.12: a File ID component is 1-8 of A-Z, 0-9 and "_", at most 8 deep.
_COMPONENT = re.compile(r"^[A-Z0-9_]{1,8}$")
_MAX_INDEX = {"P": 9999, "S": 9999, "SE": 9999, "IM": 999999}


@dataclass(frozen=True)
class DicomRef:
    """Header fields of one DICOM instance that its DICOMDIR records need."""

    patient_id: str
    patient_name: str
    study_uid: str
    study_date: str
    study_time: str
    study_id: str
    accession: str
    study_description: str
    series_uid: str
    modality: str
    series_number: int | None
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    instance_number: int | None
    series_description: str = ""

    @classmethod
    def from_dataset(cls, ds: Dataset) -> DicomRef:
        """Return the reference fields of a dataset read with its file meta."""

        def text(keyword: str) -> str:
            try:
                return str(ds.get(keyword, "") or "")
            except VALUE_ERRORS:  # a value its VR cannot hold: left empty
                return ""

        def number(keyword: str) -> int | None:
            try:
                value = ds.get(keyword)
                return None if value in (None, "") else int(value)
            except VALUE_ERRORS:  # "1e9999" in an IS, say: left empty
                return None

        return cls(
            patient_id=text("PatientID"),
            patient_name=text("PatientName"),
            study_uid=text("StudyInstanceUID"),
            study_date=text("StudyDate"),
            study_time=text("StudyTime"),
            study_id=text("StudyID"),
            accession=text("AccessionNumber"),
            study_description=text("StudyDescription"),
            series_uid=text("SeriesInstanceUID"),
            modality=text("Modality"),
            series_number=number("SeriesNumber"),
            sop_class_uid=text("SOPClassUID"),
            sop_instance_uid=text("SOPInstanceUID"),
            transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
            instance_number=number("InstanceNumber"),
            series_description=text("SeriesDescription"),
        )


def _sort_number(value: int | None) -> tuple[int, int]:
    return (1, 0) if value is None else (0, value)


def _component(prefix: str, index: int) -> str:
    if index > _MAX_INDEX[prefix]:
        raise ValueError(f"Too many {prefix} entries for a DICOM File ID")
    width = 8 - len(prefix) if prefix == "IM" else 4
    return f"{prefix}{index:0{width}d}"


def dicom_layout(refs: Sequence[DicomRef]) -> list[str]:
    """Return a PS3.10-conformant arcname for each ref, grouped patient/study/series."""
    uids = [r.sop_instance_uid for r in refs]
    if len(set(uids)) != len(uids):
        raise ValueError("Duplicate SOP Instance UID in the download")

    patients = list(dict.fromkeys(r.patient_id for r in refs))
    names: dict[int, str] = {}
    for p_index, patient in enumerate(patients, start=1):
        mine = [i for i, r in enumerate(refs) if r.patient_id == patient]
        studies = sorted(
            {refs[i].study_uid: refs[i] for i in mine}.values(),
            key=lambda r: (r.study_date, r.study_time, r.study_uid),
        )
        for s_index, study in enumerate(studies, start=1):
            in_study = [i for i in mine if refs[i].study_uid == study.study_uid]
            series = sorted(
                {refs[i].series_uid: refs[i] for i in in_study}.values(),
                key=lambda r: (_sort_number(r.series_number), r.series_uid),
            )
            for se_index, one in enumerate(series, start=1):
                in_series = sorted(
                    (i for i in in_study if refs[i].series_uid == one.series_uid),
                    key=lambda i: (_sort_number(refs[i].instance_number), refs[i].sop_instance_uid),
                )
                folder = "/".join(
                    [
                        DICOM_ROOT,
                        _component("P", p_index),
                        _component("S", s_index),
                        _component("SE", se_index),
                    ]
                )
                for im_index, i in enumerate(in_series, start=1):
                    names[i] = f"{folder}/{_component('IM', im_index)}"
    return [names[i] for i in range(len(refs))]


class DicomMember(Protocol):
    """A file of the download as the DICOMDIR sees it (sharing.archive.ArchiveMember is one)."""

    arcname: str
    dicom: DicomRef | None


class _Record:
    """One directory record as (tag, VR, value) elements, encoded without pydicom.

    pydicom takes about 1 ms per record to build and write; a 450-slice share would spend
    most of its download time there. Only the VRs below occur in directory records.
    """

    def __init__(self, kind: str, utf8: bool) -> None:
        self.utf8 = utf8
        self.elements: list[tuple[int, str, Any]] = [
            (0x00041400, "UL", 0),
            (0x00041410, "US", 0xFFFF),
            (0x00041420, "UL", 0),
            (0x00041430, "CS", kind),
        ]
        if utf8:
            self.elements.append((0x00080005, "CS", "ISO_IR 192"))

    def add(self, tag: int, vr: str, value: Any) -> None:
        self.elements.append((tag, vr, value))

    def encode(self) -> bytearray:
        """Return the record's dataset bytes (explicit VR little endian), offsets zero."""
        out = bytearray()
        for tag, vr, value in sorted(self.elements, key=lambda e: e[0]):
            out += struct.pack("<HH2s", tag >> 16, tag & 0xFFFF, vr.encode())
            if vr == "UL":
                out += struct.pack("<HL", 4, value)
            elif vr == "US":
                out += struct.pack("<HH", 2, value)
            else:
                data = _text_value(vr, value, self.utf8)
                out += struct.pack("<H", len(data)) + data
        return out


# The record's first elements are (0004,1400) UL, (0004,1410) US and (0004,1420) UL, so the
# two offset values always sit at these byte positions of the encoded record.
_NEXT_AT = 8
_LOWER_AT = 12 + 10 + 8


def _text_value(vr: str, value: Any, utf8: bool) -> bytes:
    if isinstance(value, list | tuple):
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    data = text.encode("utf-8" if utf8 and vr in ("PN", "LO", "SH") else "ascii")
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    if len(data) > 0xFFFF:
        raise ValueError("Directory record value too long")
    return data


# ---------------------------------------------------------------- valid values only

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TIME = re.compile(r"^([01][0-9]|2[0-3])([0-5][0-9]([0-5][0-9](\.[0-9]{1,6})?)?)?$")


def _one(value: str, limit: int) -> str:
    """Return the first of several values, without control characters, cut to the VR's size."""
    text = _CONTROL.sub(" ", str(value or "").split("\\")[0]).strip()
    return text[:limit].rstrip()


def _date(value: str) -> str:
    text = str(value or "").replace(".", "").replace("-", "").strip()
    try:
        datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return "19000101"
    return text if len(text) == 8 and text.isdigit() else "19000101"


def _time(value: str) -> str:
    text = _one(value, 16).replace(":", "")
    return text if _TIME.match(text) else "000000"


def _code(value: str) -> str:
    text = _one(value, 16).upper()
    return text if re.fullmatch(r"[A-Z0-9_ ]+", text) else ""


def _integer(value: int | None) -> int | None:
    return value if value is not None and -(2**31) <= value < 2**31 else None


class _Node:
    """A directory record and its lower-level records, as linked in the DICOMDIR."""

    def __init__(self, record: _Record) -> None:
        self.record = record
        self.children: list[_Node] = []
        self.offset = 0

    def walk(self) -> Iterator[_Node]:
        yield self
        for child in self.children:
            yield from child.walk()


def _new_record(kind: str, ref: DicomRef) -> _Record:
    # Records carry free text (names, descriptions) that may not be ASCII.
    utf8 = kind in ("PATIENT", "STUDY", "SERIES") and not _is_ascii(ref, kind)
    return _Record(kind, utf8)


def _is_ascii(ref: DicomRef, kind: str) -> bool:
    texts = {
        "PATIENT": [ref.patient_name, ref.patient_id],
        "STUDY": [ref.study_description, ref.study_id, ref.accession],
        "SERIES": [ref.series_description],
    }[kind]
    return all(t.isascii() for t in texts)


def _tree(members: Sequence[DicomMember]) -> list[_Node]:
    """Return the PATIENT records, each holding its STUDY, SERIES and IMAGE records."""
    patients: dict[str, _Node] = {}
    studies: dict[tuple[str, str], _Node] = {}
    series: dict[tuple[str, str, str], _Node] = {}
    for member in sorted((m for m in members if m.dicom), key=lambda m: m.arcname):
        ref = member.dicom
        assert ref is not None
        parts = member.arcname.split("/")
        if len(parts) > 8 or not all(_COMPONENT.match(p) for p in parts):
            raise ValueError("DICOM arcname is not a conformant File ID")
        p_key = ref.patient_id
        s_key = (p_key, ref.study_uid)
        se_key = (*s_key, ref.series_uid)
        if p_key not in patients:
            rec = _new_record("PATIENT", ref)
            rec.add(0x00100010, "PN", _one(ref.patient_name, 64 * 3))
            rec.add(0x00100020, "LO", _one(ref.patient_id, 64) or "UNKNOWN")
            patients[p_key] = _Node(rec)
        if s_key not in studies:
            rec = _new_record("STUDY", ref)
            # Study Date, Study Time and Study ID are Type 1 in the STUDY record and often
            # empty or malformed in dental exports: an unknown date or time is written as
            # the earliest valid value, an unknown ID as the study's number on the medium.
            rec.add(0x00080020, "DA", _date(ref.study_date))
            rec.add(0x00080030, "TM", _time(ref.study_time))
            rec.add(0x00081030, "LO", _one(ref.study_description, 64))
            rec.add(0x0020000D, "UI", ref.study_uid)
            study_id = _one(ref.study_id, 16)
            rec.add(0x00200010, "SH", study_id or str(len(patients[p_key].children) + 1))
            rec.add(0x00080050, "SH", _one(ref.accession, 16))
            studies[s_key] = _Node(rec)
            patients[p_key].children.append(studies[s_key])
        if se_key not in series:
            rec = _new_record("SERIES", ref)
            rec.add(0x00080060, "CS", _code(ref.modality) or "OT")
            rec.add(0x0020000E, "UI", ref.series_uid)
            number = _integer(ref.series_number)
            number = number if number is not None else len(studies[s_key].children) + 1
            rec.add(0x00200011, "IS", number)
            if _one(ref.series_description, 64):
                rec.add(0x0008103E, "LO", _one(ref.series_description, 64))
            series[se_key] = _Node(rec)
            studies[s_key].children.append(series[se_key])
        rec = _new_record("IMAGE", ref)
        rec.add(0x00041500, "CS", parts)
        rec.add(0x00041510, "UI", ref.sop_class_uid)
        rec.add(0x00041511, "UI", ref.sop_instance_uid)
        rec.add(0x00041512, "UI", ref.transfer_syntax_uid)
        number = _integer(ref.instance_number)
        number = number if number is not None else len(series[se_key].children) + 1
        rec.add(0x00200013, "IS", number)
        series[se_key].children.append(_Node(rec))
    return list(patients.values())


def _links(siblings: list[_Node], out: dict[int, tuple[int, int]]) -> None:
    for i, node in enumerate(siblings):
        nxt = siblings[i + 1].offset if i + 1 < len(siblings) else 0
        first_child = node.children[0].offset if node.children else 0
        out[id(node)] = (nxt, first_child)
        _links(node.children, out)


def build_dicomdir(
    members: Sequence[DicomMember], file_set_id: str = "SHARE", uid: str | None = None
) -> bytes:
    """Return DICOMDIR bytes indexing the DICOM members, with record offsets as in PS3.3 F.3."""
    roots = _tree(members)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MediaStorageDirectoryStorage
    ds.file_meta.MediaStorageSOPInstanceUID = uid or generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.FileSetID = file_set_id
    ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.FileSetConsistencyFlag = 0

    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, ds.file_meta, enforce_standard=True)
    start = fp.tell()
    write_dataset(fp, ds)

    # Same scheme as pydicom.fileset.FileSet._write_dicomdir: offsets are counted from the
    # start of the file to each record's item tag; the sequence header is 12 bytes (explicit VR).
    # Offsets are fixed-length UL values, so encoding with zeros gives each record's length.
    offset = fp.tell() + 12
    nodes = [n for root in roots for n in root.walk()]
    encoded = []
    for node in nodes:
        node.offset = offset
        encoded.append(node.record.encode())
        offset += 8 + len(encoded[-1])
    links: dict[int, tuple[int, int]] = {}
    _links(roots, links)
    items = bytearray()
    for node, body in zip(nodes, encoded, strict=True):
        next_offset, lower_offset = links[id(node)]
        struct.pack_into("<L", body, _NEXT_AT, next_offset)
        struct.pack_into("<L", body, _LOWER_AT, lower_offset)
        items += struct.pack("<HHL", 0xFFFE, 0xE000, len(body)) + body
    if roots:
        ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = roots[0].offset
        ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = roots[-1].offset
        fp.seek(start)
        write_dataset(fp, ds)
        fp.seek(0, 2)
    # (0004,1220) Directory Record Sequence, explicit VR SQ with a defined length.
    fp.write(struct.pack("<HH2sHL", 0x0004, 0x1220, b"SQ", 0, len(items)))
    fp.write(bytes(items))
    return fp.getvalue()
