"""Turn the stored files of one batch into records, in one transaction, and audit them."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from audit.models import Action
from audit.models import Outcome as AuditOutcome
from portal.ingest.header import DicomHeader
from portal.ingest.pipeline import Outcome
from portal.ingest.report import PENDING, STORED
from portal.ingest.sniff import DICOM
from portal.models import Attachment, Instance, Patient, PendingFile, Practice, Series, Study

CHUNK = 500


@dataclass
class Plan:
    """The decisions of one attempt, applied to the outcomes only once it commits."""

    status: dict[int, tuple[str, str]] = field(default_factory=dict)
    studies: list[Study] = field(default_factory=list)
    series_pks: list[int] = field(default_factory=list)
    attachment_pks: list[int] = field(default_factory=list)
    pending_pks: list[int] = field(default_factory=list)


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)]


def _existing_sops(practice: Practice, uids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(uids):
        found.update(
            Instance.objects.filter(practice=practice, sop_instance_uid__in=chunk).values_list(
                "sop_instance_uid", flat=True
            )
        )
    return found


class _Patients:
    """PatientID -> Patient for the batch; a missing patient is created only when needed."""

    def __init__(self, practice: Practice, dicoms: list[Outcome], chosen: Patient | None) -> None:
        self.practice, self.chosen = practice, chosen
        ids = sorted({o.header.patient_id for o in dicoms})
        qs = Patient.objects.filter(practice=practice, patient_id__in=ids) if chosen is None else []
        self.found: dict[str, Patient] = {p.patient_id: p for p in qs}

    def existing(self, header: DicomHeader) -> Patient | None:
        return self.chosen or self.found.get(header.patient_id)

    def get(self, header: DicomHeader) -> Patient:
        patient = self.existing(header)
        if patient is None:
            patient = self.found[header.patient_id] = Patient.objects.create(
                practice=self.practice,
                patient_id=header.patient_id,
                name=header.patient_name or "Unknown",
                birth_date=header.birth_date,
                sex=header.sex,
            )
        return patient


def build(
    outcomes: list[Outcome], practice: Practice, chosen: Patient | None, request, user
) -> Plan:
    """Create every record of the batch; call inside transaction.atomic()."""
    import audit

    plan = Plan()
    for o in outcomes:
        if o.status != "ok":
            plan.status[o.index] = (o.status, o.reason)
    dicoms = [
        o
        for o in outcomes
        if o.kind == DICOM and o.header and o.status != "rejected" and not o.pending
    ]
    new = [o for o in dicoms if o.status == "ok"]
    existing = _existing_sops(practice, [o.header.sop_uid for o in new])
    for o in new:
        if o.header.sop_uid in existing:
            plan.status[o.index] = ("duplicate", "")
    patients = _Patients(practice, dicoms, chosen)

    studies = {
        s.study_uid: s
        for chunk in _chunks(sorted({o.header.study_uid for o in dicoms}))
        for s in Study.objects.filter(practice=practice, study_uid__in=chunk).select_related(
            "patient"
        )
    }
    fresh: set[str] = set()
    rejected_by_study: Counter[str] = Counter()
    for o in dicoms:
        h = o.header
        study = studies.get(h.study_uid)
        if study is None:
            study = Study.objects.create(practice=practice, patient=patients.get(h), **h.study)
            studies[h.study_uid] = study
            fresh.add(h.study_uid)
        patient = patients.existing(h)
        if patient is None or study.patient_id != patient.pk:
            plan.status[o.index] = ("rejected", "study belongs to another patient record")
            rejected_by_study[h.study_uid] += 1

    series_map: dict[tuple[str, str], Series] = {}
    for s in Series.objects.filter(study__in=list(studies.values())).select_related("study"):
        series_map[(s.study.study_uid, s.series_uid)] = s
    to_create: list[Instance] = []
    counts: Counter[str] = Counter()
    dupes: Counter[str] = Counter()
    modalities: dict[str, set[str]] = defaultdict(set)
    touched_series: dict[int, Series] = {}
    for o in dicoms:
        h = o.header
        state = plan.status.get(o.index, ("ok", ""))[0]
        if state == "duplicate":
            dupes[h.study_uid] += 1
        if state != "ok":
            continue
        key = (h.study_uid, h.series_uid)
        series = series_map.get(key)
        if series is None:
            series = Series.objects.create(study=studies[h.study_uid], **h.series)
            series_map[key] = series
        touched_series[series.pk] = series
        to_create.append(
            Instance(
                practice=practice,
                series=series,
                blob=o.blob,
                original_name=o.name[-255:],
                **h.instance,
            )
        )
        counts[h.study_uid] += 1
        if h.series["modality"]:
            modalities[h.study_uid].add(h.series["modality"])
        plan.status[o.index] = (STORED, "")
    Instance.objects.bulk_create(to_create, batch_size=CHUNK)

    batch_studies = [studies[uid] for uid in dict.fromkeys(o.header.study_uid for o in dicoms)]
    for study in batch_studies:
        uid = study.study_uid
        if modalities[uid]:
            merged = sorted(set(filter(None, study.modalities.split("\\"))) | modalities[uid])
            value = "\\".join(merged)[:64]
            if value != study.modalities:
                study.modalities = value
                study.save(update_fields=["modalities"])
        if study.study_date and counts[uid]:
            patient = study.patient
            if patient.last_visit is None or patient.last_visit < study.study_date:
                patient.last_visit = study.study_date
                patient.save(update_fields=["last_visit"])
        if counts[uid] or rejected_by_study[uid]:
            audit.record(
                Action.INGEST,
                request=request,
                user=user,
                practice=practice,
                patient=study.patient,
                obj=study,
                detail={
                    "instances": counts[uid],
                    "duplicates": dupes[uid],
                    "rejected": rejected_by_study[uid],
                    "new_study": uid in fresh,
                },
            )
    plan.studies = [s for s in batch_studies if counts[s.study_uid] or dupes[s.study_uid]]
    plan.series_pks = sorted(touched_series)

    owner = chosen
    if owner is None:
        # Only files stored now decide: rejected, damaged or duplicate ones name nobody.
        stored = [o for o in dicoms if plan.status.get(o.index, ("",))[0] == STORED]
        owners = {patients.existing(o.header) for o in stored}
        owner = owners.pop() if len(owners) == 1 else None
    # Photos and reports join the one study of this batch that is the owner's and kept
    # files; a study whose files were refused (another patient's record) is not theirs.
    own = [s for s in plan.studies if owner is not None and s.patient_id == owner.pk]
    study_for_files = own[0] if len(own) == 1 else None
    for o in outcomes:
        if o.status != "ok":
            continue
        if o.kind == DICOM and not o.pending:
            continue
        if o.kind != DICOM and owner is None:
            o.pending = "no DICOM file of the batch decided the patient"
        if o.pending:
            _wait_for_patient(o, practice, user, request, plan)
            continue
        attachment = Attachment.objects.create(
            practice=practice,
            patient=owner,
            study=study_for_files,
            kind=Attachment.Kind.PHOTO if o.photo else Attachment.Kind.PDF,
            content_type=o.content_type,
            title=named_for_content(o)[0].rsplit("/", 1)[-1][:200],
            original_name=named_for_content(o)[0][-255:],
            width=o.photo.width if o.photo else None,
            height=o.photo.height if o.photo else None,
            blob=o.blob,
        )
        plan.attachment_pks.append(attachment.pk)
        note = named_for_content(o)[1]
        where = f"attached to patient {owner.patient_id}"
        plan.status[o.index] = (STORED, f"{where}; {note}" if note else where)
        audit.record(
            Action.UPLOAD,
            request=request,
            user=user,
            practice=practice,
            patient=owner,
            obj=attachment,
            detail={"kind": attachment.kind},
        )

    reasons = Counter(reason for state, reason in plan.status.values() if state == "rejected")
    if reasons:
        audit.record(
            Action.INGEST,
            request=request,
            user=user,
            practice=practice,
            outcome=AuditOutcome.FAILED,
            detail={"rejected": sum(reasons.values()), "reasons": dict(reasons)},
        )
    return plan


_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "application/pdf": ".pdf"}


def named_for_content(o: Outcome) -> tuple[str, str]:
    """Return the file's name with the extension of what it is, and a note when that changed."""
    name = o.name
    right = _EXTENSIONS.get(o.content_type)
    base, dot, suffix = name.rpartition(".")
    if right is None or not dot or "/" in suffix:
        return name, ""
    if "." + suffix.lower() in (right, ".jpeg" if right == ".jpg" else right):
        return name, ""
    if "." + suffix.lower() not in (".jpg", ".jpeg", ".png", ".pdf"):
        return name, ""
    what = "a PDF document" if right == ".pdf" else f"a {right[1:].upper()} image"
    return base + right, f"named {base.rsplit('/', 1)[-1]}{right}: the content is {what}"


def _wait_for_patient(o: Outcome, practice: Practice, user, request, plan: Plan) -> None:  # noqa: ANN001
    """Keep a file that names no patient in the queue staff resolve in the workspace."""
    import audit

    name = named_for_content(o)[0] if o.kind != DICOM else o.name
    pending = PendingFile.objects.create(
        practice=practice,
        kind=o.kind,
        content_type=o.content_type,
        original_name=name[-255:],
        width=o.photo.width if o.photo else None,
        height=o.photo.height if o.photo else None,
        reason=o.pending[:200],
        blob=o.blob,
        uploaded_by=user if getattr(user, "is_authenticated", False) else None,
    )
    plan.status[o.index] = (PENDING, o.pending)
    plan.pending_pks.append(pending.pk)
    audit.record(
        Action.UPLOAD,
        request=request,
        user=user,
        practice=practice,
        obj=pending,
        detail={"kind": o.kind, "pending": True},
    )
