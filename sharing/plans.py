"""Download plans: what a ZIP of a share holds, worked out once and kept sealed in the vault.

Building the DICOMDIR of a 450-file CBCT, sizing the ZIP and reading every file's header
fields took longer than sending the first megabyte. A plan keeps the member names in order,
the DICOMDIR and README and the ZIP's length. It is made when a link is issued (or by the
first download), stored encrypted like everything else (the DICOMDIR names the patient), and
superseded as soon as the files it covers change (their count or newest id); a download then
reads only the plan and the stored-object rows it streams from.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import struct
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max

from portal import vault
from portal.models import Attachment, Instance, Series, StoredObject, Study
from portal.rows import fetch_all
from sharing.archive import ArchiveMember, DicomRef, archive_extras, dicom_layout, stream_zip
from sharing.models import DownloadPlan
from sharing.streaming import ascii_fallback
from viewer import tags

logger = logging.getLogger(__name__)

# Bump when what a plan holds or how the ZIP is laid out changes.
# 2: the DICOMDIR's patient, study and series values come from the files themselves.
FORMAT = 2
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}


@dataclass(frozen=True, slots=True)
class _Instance:
    """The instance columns a DICOMDIR record needs."""

    pk: int
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    instance_number: int | None


@dataclass(frozen=True, slots=True)
class _Blob:
    """The stored-object columns vault.iter_range reads.

    A CBCT has hundreds of files; plain rows instead of two model instances per file take
    tens of milliseconds off the time to the first byte.
    """

    code: uuid.UUID
    storage_name: str
    key_id: str
    wrapped_key: bytes | None
    plain_size: int
    segment_size: int
    crc32: int | None


_INSTANCE_COLUMNS = (
    "pk", "sop_class_uid", "sop_instance_uid", "transfer_syntax_uid", "instance_number",
)  # fmt: skip
_BLOB_COLUMNS = tuple(f"blob__{f}" for f in _Blob.__slots__)


def _dicom_ref(instance: Instance | _Instance, series: Series) -> DicomRef:
    study = series.study
    patient = study.patient
    return DicomRef(
        patient_id=patient.patient_id,
        patient_name=patient.name.replace(" ", "^"),
        study_uid=study.study_uid,
        study_date=study.study_date.strftime("%Y%m%d") if study.study_date else "",
        study_time=study.study_time,
        study_id=study.study_id,
        accession=study.accession_number,
        study_description=study.description,
        series_uid=series.series_uid,
        modality=series.modality,
        series_number=series.number,
        sop_class_uid=instance.sop_class_uid,
        sop_instance_uid=instance.sop_instance_uid,
        transfer_syntax_uid=instance.transfer_syntax_uid,
        instance_number=instance.instance_number,
        series_description=series.description,
    )


# What a DICOMDIR record takes from each file; the rest of its header is not parsed.
_REF_TAGS = [
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "StudyDate", "StudyTime",
    "AccessionNumber", "Modality", "StudyDescription", "SeriesDescription", "PatientName",
    "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "StudyID", "SeriesNumber",
    "InstanceNumber",
]  # fmt: skip


def _file_ref(blob: _Blob, instance: _Instance, series: Series) -> DicomRef:
    """Return the DICOMDIR fields as the stored file itself says them.

    Dental software importing the medium compares the DICOMDIR with the files: a name
    rebuilt from the record's display name ("Maria^Demo-Garcia" for "Demo-Garcia^Maria")
    shows the family name as the given name. Only the header is read (viewer.tags); a file
    whose header cannot be read falls back to the records.
    """
    try:
        return DicomRef.from_dataset(tags.read_header(blob, _REF_TAGS))
    # A damaged file stops the download when it is streamed; a plan is still made. A value
    # its VR cannot hold means the same: the records are used.
    except (tags.HeaderError, vault.VaultIntegrityError, *tags.VALUE_ERRORS) as exc:
        return _fallback_ref(instance, series, exc)


def _fallback_ref(instance: _Instance, series: Series, exc: Exception) -> DicomRef:
    logger.warning(
        "DICOMDIR uses the records for instance %s (%s)", instance.pk, exc.__class__.__name__
    )
    return _dicom_ref(instance, series)


def _blob_chunks(blob) -> Any:
    return lambda: vault.iter_range(blob)


def dicom_members(series_qs) -> list[ArchiveMember]:
    """Return the DICOM members of the series, loading only what the ZIP and DICOMDIR need."""
    series = {
        s.pk: s for s in Series.objects.filter(pk__in=series_qs).select_related("study__patient")
    }
    rows = Instance.objects.filter(series__in=list(series)).values_list(
        "series_id", *_INSTANCE_COLUMNS, *_BLOB_COLUMNS
    )
    split = 1 + len(_INSTANCE_COLUMNS)
    files = [
        (series[row[0]], _Instance(*row[1:split]), _Blob(*row[split:])) for row in rows.iterator()
    ]
    refs = [_file_ref(blob, instance, s) for s, instance, blob in files]
    names = dicom_layout(refs)
    blobs = [blob for _, _, blob in files]
    ids = [instance.pk for _, instance, _ in files]
    return [
        ArchiveMember(name, blob.plain_size, blob.crc32, _blob_chunks(blob), ref, pk)
        for name, blob, ref, pk in zip(names, blobs, refs, ids, strict=True)
    ]


def _attachment_name(index: int, attachment: Attachment) -> str:
    ext = _EXTENSIONS.get(attachment.content_type, ".bin")
    stem = (attachment.original_name or attachment.title or attachment.kind).rsplit(".", 1)[0]
    folder = "Photos" if attachment.kind == Attachment.Kind.PHOTO else "Documents"
    return f"{folder}/{index:03d} {ascii_fallback(stem)[:60]}{ext}"


def attachment_members(attachments: Iterable[Attachment]) -> list[ArchiveMember]:
    return [
        ArchiveMember(
            _attachment_name(n, a),
            a.blob.plain_size,
            a.blob.crc32,
            _blob_chunks(a.blob),
            source_id=a.pk,
        )
        for n, a in enumerate(attachments, start=1)
    ]


@dataclass(frozen=True)
class Plan:
    """A ZIP's layout: DICOM members (by instance id) then attachments, and its extra files."""

    instance_ids: list[int]
    attachment_ids: list[int]
    names: list[str]
    extra: dict[str, bytes]
    length: int

    def encode(self) -> bytes:
        meta = {
            "instances": self.instance_ids,
            "attachments": self.attachment_ids,
            "names": self.names,
            "extra": {name: len(data) for name, data in self.extra.items()},
            "length": self.length,
        }
        head = json.dumps(meta, separators=(",", ":")).encode()
        return struct.pack("<I", len(head)) + head + b"".join(self.extra.values())

    @classmethod
    def decode(cls, data: bytes) -> Plan:
        (size,) = struct.unpack_from("<I", data)
        meta = json.loads(data[4 : 4 + size])
        extra, at = {}, 4 + size
        for name, length in meta["extra"].items():
            extra[name] = bytes(data[at : at + length])
            at += length
        return cls(meta["instances"], meta["attachments"], meta["names"], extra, meta["length"])


def _version(series_ids: Sequence[int], attachment_ids: Sequence[int]) -> str:
    """Return what changes whenever a file is added to or removed from the scope."""
    files = Instance.objects.filter(series_id__in=series_ids).aggregate(n=Count("id"), m=Max("id"))
    return f"{files['n']}.{files['m'] or 0}+{len(attachment_ids)}.{max(attachment_ids, default=0)}"


def _build(series_ids: Sequence[int], attachment_ids: Sequence[int], practice_name: str) -> Plan:
    dicom = dicom_members(Series.objects.filter(pk__in=series_ids))
    attachments = Attachment.objects.filter(pk__in=attachment_ids).select_related("blob")
    members = dicom + attachment_members(
        sorted(attachments, key=lambda a: attachment_ids.index(a.pk))
    )
    extra = archive_extras(members, practice_name)
    _, length = stream_zip(members, extra)
    return Plan(
        [m.source_id for m in dicom],
        list(attachment_ids),
        [m.arcname for m in members],
        extra,
        length,
    )


def plan_for(
    scope: str,
    study: Study,
    series_ids: Sequence[int],
    attachment_ids: Sequence[int],
    practice_name: str,
) -> Plan:
    """Return the current plan of a download scope, making and storing it when there is none.

    `scope` names what is downloaded ("share:<code>", "series:<code>").
    """
    key = f"{FORMAT}:{scope}:{_version(series_ids, attachment_ids)}"
    row = DownloadPlan.objects.select_related("blob").filter(key=key).first()
    if row is not None and row.blob.wrapped_key is not None:
        try:
            return _read_plan(row.blob)
        except (vault.VaultIntegrityError, ValueError, KeyError) as exc:
            logger.warning("download plan %s unreadable (%s); rebuilding", row.blob.code, exc)
    plan = _build(series_ids, list(attachment_ids), practice_name)
    _store(key, scope, study, plan)
    return plan


# Plans read lately, by their stored object: a stored plan never changes (a new one is
# stored under a new object), so its decoded copy is reused instead of read and decrypted
# again on every download's first byte.
_READ_PLANS: OrderedDict[uuid.UUID, Plan] = OrderedDict()
_READ_PLANS_LOCK = threading.Lock()
READ_PLANS_KEPT = 16


def _read_plan(blob: StoredObject) -> Plan:
    with _READ_PLANS_LOCK:
        plan = _READ_PLANS.get(blob.code)
        if plan is not None:
            _READ_PLANS.move_to_end(blob.code)
            return plan
    plan = Plan.decode(vault.read_bytes(blob))
    with _READ_PLANS_LOCK:
        _READ_PLANS[blob.code] = plan
        while len(_READ_PLANS) > READ_PLANS_KEPT:
            _READ_PLANS.popitem(last=False)
    return plan


def _store(key: str, scope: str, study: Study, plan: Plan) -> None:
    """Keep the plan, and shred the plans it supersedes; a concurrent maker's copy wins."""
    sealed = vault.seal(io.BytesIO(plan.encode()))
    try:
        with transaction.atomic():
            sealed.save(force_insert=True)
            DownloadPlan.objects.create(key=key, scope=scope, study=study, blob=sealed)
    except IntegrityError:
        vault.discard_unsaved(sealed)
        return
    stale = DownloadPlan.objects.filter(scope=scope).exclude(key=key).select_related("blob")
    for old in stale:
        vault.shred(old.blob)
        old.delete()


@functools.cache
def _blobs_sql(model) -> str:  # noqa: ANN001
    quote, blob = connection.ops.quote_name, StoredObject._meta
    columns = ", ".join(f"b.{quote(blob.get_field(f).column)}" for f in _Blob.__slots__)
    pk = quote(model._meta.pk.column)
    return (
        f"SELECT o.{pk}, {columns} "  # noqa: S608 - model metadata only
        f"FROM {quote(model._meta.db_table)} o JOIN {quote(blob.db_table)} b "
        f"ON b.{quote(blob.pk.column)} = o.{quote(model._meta.get_field('blob').column)} "
        f"WHERE o.{pk} = ANY(%s)"
    )


def _blobs(model, pks: Sequence[int]) -> dict[int, _Blob]:  # noqa: ANN001 - Instance or Attachment
    """Return the stored-object columns of these rows' files, by row pk.

    On PostgreSQL one array parameter and a plain cursor: a 450-file CBCT's rows take half
    the time they take through the ORM's IN list, which is most of a ZIP's first byte.
    """
    if not pks:
        return {}
    if connection.vendor != "postgresql":
        rows = model.objects.filter(pk__in=pks).values_list("pk", *_BLOB_COLUMNS)
        return {row[0]: _Blob(*row[1:]) for row in rows}
    # Prepared on the server once per connection: planning it afresh cost a millisecond.
    rows = fetch_all(connection, _blobs_sql(model), [list(pks)])
    return {row[0]: _Blob(*row[1:]) for row in rows}


def members(plan: Plan) -> list[ArchiveMember] | None:
    """Return the plan's members with their stored objects, or None if a file went away."""
    instances = _blobs(Instance, plan.instance_ids)
    attachments = _blobs(Attachment, plan.attachment_ids)
    blobs = [instances.get(pk) for pk in plan.instance_ids]
    blobs += [attachments.get(pk) for pk in plan.attachment_ids]
    if any(blob is None or blob.wrapped_key is None for blob in blobs):
        return None
    return [
        ArchiveMember(name, blob.plain_size, blob.crc32, _blob_chunks(blob))
        for name, blob in zip(plan.names, blobs, strict=True)
    ]


def _zip(scope_name: str, study, series_ids, attachment_ids, practice_name: str):
    plan = plan_for(scope_name, study, series_ids, attachment_ids, practice_name)
    found = members(plan)
    if found is None:  # a file was shredded since the plan was read: plan afresh
        plan = plan_for(scope_name, study, series_ids, attachment_ids, practice_name)
        found = members(plan) or []
    return stream_zip(found, plan.extra, length=plan.length)


def _share_args(scope) -> tuple:  # noqa: ANN001 - portal.access.Scope of a share
    share = scope.share
    # The study and its practice in one read, kept on the link for the download's name too.
    study = Study.objects.select_related("practice").get(pk=share.study_id)
    share.study = study
    if study.practice_id == share.practice_id:
        share.practice = study.practice
    attachments = scope.attachments().order_by("created_at", "pk").values_list("pk", flat=True)
    return (
        f"share:{share.code}",
        study,
        list(scope.series().values_list("pk", flat=True)),
        list(attachments),
        share.practice.name,
    )


def share_zip(scope) -> tuple:  # noqa: ANN001
    """Return (ZipStream, length) of everything a share covers."""
    return _zip(*_share_args(scope))


def series_zip(scope, series: Series) -> tuple:  # noqa: ANN001
    """Return (ZipStream, length) of one series of a share."""
    return _zip(
        f"series:{series.code}", scope.share.study, [series.pk], [], scope.share.practice.name
    )


def prepare_share(scope) -> None:  # noqa: ANN001
    """Make the share's plan ahead of its first download (when the link is issued)."""
    plan_for(*_share_args(scope))
