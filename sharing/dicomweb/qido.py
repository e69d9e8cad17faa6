"""QIDO-RS answers in the DICOM JSON model, built from the records (no file is opened)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, QuerySet

from portal.access import Scope
from portal.models import Instance, Series, Study

MATCH_KEYS = {
    "StudyInstanceUID": "0020000D",
    "SeriesInstanceUID": "0020000E",
    "SOPInstanceUID": "00080018",
    "Modality": "00080060",
    "PatientID": "00100020",
    "AccessionNumber": "00080050",
}


def _el(vr: str, *values: Any) -> dict[str, Any]:
    kept = [v for v in values if v not in (None, "")]
    return {"vr": vr, "Value": kept} if kept else {"vr": vr}


def _da(value) -> dict[str, Any]:
    return _el("DA", value.strftime("%Y%m%d") if value else None)


def study_json(study: Study, base: str, series: int, instances: int) -> dict[str, Any]:
    patient = study.patient
    return {
        "00080020": _da(study.study_date),
        "00080030": _el("TM", study.study_time),
        "00080050": _el("SH", study.accession_number),
        "00080061": _el("CS", *filter(None, study.modalities.split("\\"))),
        "00081030": _el("LO", study.description),
        "00081190": _el("UR", f"{base}/studies/{study.study_uid}"),
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": patient.name}]},
        "00100020": _el("LO", patient.patient_id),
        "00100030": _da(patient.birth_date),
        "00100040": _el("CS", patient.sex),
        "0020000D": _el("UI", study.study_uid),
        "00200010": _el("SH", study.study_id),
        "00201206": _el("IS", series),
        "00201208": _el("IS", instances),
    }


def series_json(series: Series, base: str, instances: int) -> dict[str, Any]:
    study_uid = series.study.study_uid
    return {
        "00080060": _el("CS", series.modality),
        "0008103E": _el("LO", series.description),
        "00081190": _el("UR", f"{base}/studies/{study_uid}/series/{series.series_uid}"),
        "0020000D": _el("UI", study_uid),
        "0020000E": _el("UI", series.series_uid),
        "00200011": _el("IS", series.number),
        "00201209": _el("IS", instances),
    }


def instance_json(instance: Instance, base: str) -> dict[str, Any]:
    series = instance.series
    study_uid = series.study.study_uid
    url = (
        f"{base}/studies/{study_uid}/series/{series.series_uid}"
        f"/instances/{instance.sop_instance_uid}"
    )
    return {
        "00080016": _el("UI", instance.sop_class_uid),
        "00080018": _el("UI", instance.sop_instance_uid),
        "00081190": _el("UR", url),
        "00083002": _el("UI", instance.transfer_syntax_uid),
        "0020000D": _el("UI", study_uid),
        "0020000E": _el("UI", series.series_uid),
        "00200013": _el("IS", instance.instance_number),
        "00280008": _el("IS", instance.frames),
        "00280010": _el("US", instance.rows),
        "00280011": _el("US", instance.columns),
    }


def matches(item: dict[str, Any], params: Iterable[tuple[str, str]]) -> bool:
    """Apply exact matches on the keys the records hold; other query keys are ignored."""
    for key, wanted in params:
        tag = MATCH_KEYS.get(key, key if key in item else None)
        if tag is None or not wanted:
            continue
        values = [str(v) for v in item.get(tag, {}).get("Value", [])]
        if wanted not in values and not (
            wanted.endswith("*") and any(v.startswith(wanted[:-1]) for v in values)
        ):
            return False
    return True


def page(items: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
    try:
        offset = max(0, int(params.get("offset", 0)))
        limit = int(params.get("limit", 0))
    except ValueError:
        offset, limit = 0, 0
    items = items[offset:]
    return items[:limit] if limit > 0 else items


def search_studies(scope: Scope, base: str) -> list[dict[str, Any]]:
    studies = scope.studies().select_related("patient")
    out = []
    for study in studies:
        series = scope.series().filter(study=study).annotate(n=Count("instances"))
        out.append(study_json(study, base, len(series), sum(s.n for s in series)))
    return out


def search_series(scope: Scope, base: str, study_uid: str | None) -> list[dict[str, Any]]:
    qs: QuerySet[Series] = scope.series().select_related("study")
    if study_uid:
        qs = qs.filter(study__study_uid=study_uid)
    qs = qs.annotate(n=Count("instances")).order_by("number", "created_at")
    return [series_json(s, base, s.n) for s in qs]


def search_instances(
    scope: Scope, base: str, study_uid: str | None, series_uid: str | None
) -> list[dict[str, Any]]:
    qs = scope.instances().select_related("series__study")
    if study_uid:
        qs = qs.filter(series__study__study_uid=study_uid)
    if series_uid:
        qs = qs.filter(series__series_uid=series_uid)
    return [instance_json(i, base) for i in qs]
