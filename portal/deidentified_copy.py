"""A stored de-identified copy of a study, made once for a share of de-identified data.

Each original is read from the vault one file at a time, de-identified in memory
(portal.deidentify, with the practice's options and one UID map for the whole copy, so the
copy stays one study) and sealed into the vault as a file of its own; the originals are
never altered. The copy's records hang under a patient record of its own that names no one
(`Patient.deidentified_copy`), which staff never see in their workspace; so every way a
share serves a study (viewer, tags, ZIP, DICOMDIR, single files, DICOMweb) serves the copy
byte for byte as it serves any study, at the same speed, and cannot reach the original.

Burned-in annotation: a file whose header says Burned In Annotation YES carries text in its
pixels that the portal cannot find and clean. With the practice's Clean Pixel Data option
(the default) such a file is left out of the copy; without it, it is included and flagged.
Either way staff are told at issue time which files said so.

A copy lives as long as its link can: revoking the link, or its expiry once it can no
longer be extended, crypto-shreds the copy's files (dispose). Its records stay, naming no
one, so the patient's accounting of disclosures still says what was shared.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass, field
from datetime import datetime

import pydicom
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal import deidentify, vault
from portal.compliance.stored import objects_of, shred_recorded
from portal.ingest.header import DicomHeader
from portal.ingest.sniff import parse_dicom
from portal.models import Instance, Patient, Series, Study

# A file is de-identified in memory; a larger one is left out with the reason.
MAX_FILE_BYTES = 512 * 2**20


@dataclass
class Copy:
    """What was made: the copy's study, and what staff are told about it."""

    study: Study | None = None
    options: deidentify.Options = field(default_factory=deidentify.Options)
    total: int = 0
    included: int = 0
    left_out: list[str] = field(default_factory=list)
    burned_in: list[str] = field(default_factory=list)
    series_pks: list[int] = field(default_factory=list)

    @property
    def method(self) -> str:
        return deidentify.method_text(self.options)

    def as_detail(self) -> dict:
        """Return what the audit event of the issue records (counts and options, no PHI)."""
        return {
            "deidentified": True,
            "clean_pixels": self.options.clean_pixels,
            "dates": self.options.dates,
            "files": self.total,
            "included": self.included,
            "burned_in": len(self.burned_in),
        }


def options_for(practice) -> deidentify.Options:  # noqa: ANN001
    """Return the practice's choice of the profile's options."""
    return deidentify.Options(clean_pixels=practice.deid_clean_pixels, dates=practice.deid_dates)


def make_copy(study: Study, series: list[Series] | None = None) -> Copy:
    """De-identify the study (or the chosen series) into new records; call in a transaction.

    The caller queues the copy's previews after commit (copy.series_pks).
    """
    copy = Copy(options=options_for(study.practice))
    export = deidentify.Export(copy.options)
    instances = (
        Instance.objects.filter(series__study=study)
        .select_related("blob", "series")
        .order_by("series__number", "series__pk", "instance_number", "pk")
    )
    if series:
        instances = instances.filter(series__in=series)
    records = _Records(study, export)
    for n, instance in enumerate(instances.iterator(chunk_size=200), start=1):
        copy.total += 1
        name = f"file {n} (series {instance.series.number or '?'})"
        if instance.blob.plain_size > MAX_FILE_BYTES:
            copy.left_out.append(f"{name}: larger than a de-identified copy allows")
            continue
        try:
            data, header = _deidentified(vault.read_bytes(instance.blob), export, copy, name)
        except deidentify.LeftOut as exc:
            copy.left_out.append(f"{name}: left out, {exc}")
            continue
        records.add(data, header, copy.included + 1)
        copy.included += 1
    copy.study = records.study
    copy.series_pks = sorted(records.series_pks)
    return copy


def _deidentified(
    original: bytes, export: deidentify.Export, copy: Copy, name: str
) -> tuple[bytes, DicomHeader]:
    """Return the de-identified file and its header, or raise LeftOut saying why not."""
    try:
        ds = pydicom.dcmread(io.BytesIO(original))
    # pydicom raises nearly any exception type on a file it cannot read back.
    except Exception:  # noqa: BLE001
        raise deidentify.LeftOut("its header could not be read for de-identification") from None
    if deidentify.has_burned_in_annotation(ds):
        copy.burned_in.append(name)
    deidentify.deidentify(ds, export)
    out = io.BytesIO()
    try:
        ds.save_as(out, enforce_file_format=True)
    except Exception:  # noqa: BLE001 - as above, for writing
        raise deidentify.LeftOut("it could not be written as a DICOM file") from None
    data = out.getvalue()
    try:
        return data, parse_dicom(data, at_eof=True)
    except Exception:  # noqa: BLE001 - the copy must pass the checks an upload passes
        raise deidentify.LeftOut("the copy did not pass the portal's checks of a file") from None


class _Records:
    """The copy's patient, study and series, created as the first file of each arrives."""

    def __init__(self, source: Study, export: deidentify.Export) -> None:
        self.source, self.export = source, export
        self.study: Study | None = None
        self.series: dict[str, Series] = {}
        self.series_pks: set[int] = set()

    def add(self, data: bytes, header: DicomHeader, number: int) -> None:
        if self.study is None:
            self.study = Study.objects.create(
                practice=self.source.practice, patient=self._patient(header), **header.study
            )
        series = self.series.get(header.series_uid)
        if series is None:
            series = self.series[header.series_uid] = Series.objects.create(
                study=self.study, **header.series
            )
            self.series_pks.add(series.pk)
        blob = vault.store(io.BytesIO(data))
        Instance.objects.create(
            practice=self.source.practice,
            series=series,
            blob=blob,
            original_name=f"IM{number:06d}.dcm",
            **header.instance,
        )
        modality = header.series["modality"]
        if modality and modality not in self.study.modalities.split("\\"):
            self.study.modalities = "\\".join(filter(None, [self.study.modalities, modality]))
            self.study.save(update_fields=["modalities"])

    def _patient(self, header: DicomHeader) -> Patient:
        return Patient.objects.create(
            practice=self.source.practice,
            patient_id=header.patient_id or "ANON-" + secrets.token_hex(5).upper(),
            name=str(header.patient_name or "ANONYMOUS").replace("^", " "),  # as the files say
            deidentified_copy=True,
        )


def queue_previews(copy: Copy) -> None:
    """Build the copy's thumbnails and volumes once the records are committed."""
    if not copy.series_pks:
        return
    from viewer.tasks import build_previews  # noqa: PLC0415 - the task app loads late

    pks = list(copy.series_pks)
    transaction.on_commit(lambda: build_previews.delay(pks, []))


DISPOSAL_REASON = "de-identified copy of a closed link"


def disposed(study: Study) -> bool:
    """Whether the copy's files were shredded when its link closed."""
    return Instance.objects.filter(series__study=study, blob__wrapped_key__isnull=True).exists()


def _lock_links(study: Study) -> list:
    """Lock the copy's links until the transaction ends (an extension waits), and return them."""
    from sharing.models import ShareLink  # noqa: PLC0415 - sharing builds on portal

    links = ShareLink.objects.select_for_update(of=("self",), no_key=True).filter(study=study)
    return list(links.select_related("practice"))


def _closed(links: list, now: datetime) -> bool:
    """Whether every link is revoked, or expired with no extension left: both its expiry and
    the practice's maximum from its issue have passed (an admin may lower the maximum)."""
    return all(s.revoked_at or max(s.expires_at, s.latest_expiry) <= now for s in links)


def _shred(study: Study) -> int:
    objects = objects_of(study)
    return shred_recorded(study, objects, DISPOSAL_REASON) if objects else 0


def dispose(study: Study) -> int:
    """Crypto-shred a copy's files, thumbnails, volumes and ZIPs; keep its records."""
    with transaction.atomic():
        _lock_links(study)
        return _shred(study)


def dispose_if_closed(study: Study) -> int:
    """Dispose of the copy if none of its links can be opened again; return objects shredded."""
    if not study.patient.deidentified_copy:
        return 0
    with transaction.atomic():
        if not _closed(_lock_links(study), timezone.now()):
            return 0
        return _shred(study)


def dispose_closed() -> int:
    """Dispose of every copy whose links closed for good (daily); return the copies.

    A copy counts while anything of it is still readable, so a thumbnail or ZIP stored while
    its link was being revoked goes the next day.
    """
    from sharing.models import DownloadPlan  # noqa: PLC0415 - sharing builds on portal

    copies = {"study__patient__deidentified_copy": True}
    live = set(
        Instance.objects.filter(
            series__study__patient__deidentified_copy=True, blob__wrapped_key__isnull=False
        ).values_list("series__study_id", flat=True)
    )
    live |= set(
        Series.objects.filter(**copies)
        .filter(Q(thumbnail__wrapped_key__isnull=False) | Q(volume__wrapped_key__isnull=False))
        .values_list("study_id", flat=True)
    )
    live |= set(
        DownloadPlan.objects.filter(**copies, blob__wrapped_key__isnull=False).values_list(
            "study_id", flat=True
        )
    )
    studies = Study.objects.filter(pk__in=live).select_related("practice", "patient")
    return sum(1 for study in studies if dispose_if_closed(study))
