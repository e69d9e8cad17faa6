"""The access history's back-office views: CSV export of a filtered list, and timelines."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from uuid import UUID

from django.contrib.admin.options import IncorrectLookupParameters
from django.db import transaction
from django.db.models import Count
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.http import content_disposition_header

import audit
from audit.models import AccessEvent, Action

TIMELINE_LIMIT = 5000
COLUMNS = (
    "seq", "time", "action", "outcome", "practice", "staff member", "patient record",
    "patient", "link", "object", "object id", "address", "user agent", "detail",
)  # fmt: skip


def _cell(value) -> str:
    """Keep a spreadsheet from reading a cell as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(events: Iterable[AccessEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for e in events:
        yield writer.writerow(
            _cell(v)
            for v in (
                e.seq, timezone.localtime(e.created_at).isoformat(timespec="seconds"),
                e.get_action_display(), e.outcome, e.practice and e.practice.name,
                e.user and e.user.get_username(), e.patient and e.patient.patient_id,
                e.patient and e.patient.name, e.share_code, e.object_type, e.object_code,
                e.ip_address, e.user_agent, json.dumps(e.detail, sort_keys=True),
            )
        )  # fmt: skip


def export(model_admin, request: HttpRequest) -> HttpResponse:
    """Stream the filtered list as CSV, after recording the export for each patient in it."""
    try:
        changelist = model_admin.get_changelist_instance(request)
        events = changelist.get_queryset(request)
    except IncorrectLookupParameters:
        return HttpResponseBadRequest(
            "A filter of this export is not valid: go back to the access history, choose the "
            "filters again and export from there.",
            content_type="text/plain; charset=utf-8",
        )
    filters = sorted(k for k in request.GET if k not in ("q", "o", "p"))
    per_patient = list(
        events.exclude(patient=None).order_by().values("patient").annotate(rows=Count("id"))
    )
    from portal.models import Patient

    patients = Patient.objects.in_bulk([row["patient"] for row in per_patient])
    with transaction.atomic():
        audit.record(
            Action.EXPORT,
            request=request,
            # A practice admin's export is in their practice's own history; an operator's
            # (a superuser's, across practices) belongs to none.
            practice=None if request.user.is_superuser else _own_practice(request),
            detail={"export": "access history", "rows": events.count(), "filters": filters,
                    "searched": bool(request.GET.get("q"))},
        )  # fmt: skip
        for row in per_patient:
            patient = patients[row["patient"]]
            audit.record(
                Action.EXPORT,
                request=request,
                practice=patient.practice,
                patient=patient,
                detail={"export": "access history", "rows": row["rows"]},
            )
    rows = events.select_related("practice", "user", "patient").order_by("seq").iterator(2000)
    response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = content_disposition_header(
        True, f"access-history-{stamp}.csv"
    )
    response["Cache-Control"] = "no-store"
    return response


def _own_practice(request: HttpRequest):  # noqa: ANN202
    from portal.models import StaffMember

    member = StaffMember.objects.filter(user=request.user).select_related("practice").first()
    return member.practice if member else None


def _timeline(model_admin, request: HttpRequest, events, title: str, subject: str, patient):
    events = events.select_related("user", "patient").order_by("-seq")
    shown = list(events[:TIMELINE_LIMIT])[::-1]
    if patient is not None:
        audit.record(
            Action.ADMIN_VIEW,
            request=request,
            practice=patient.practice,
            patient=patient,
            detail={"page": "timeline", "of": subject},
        )
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "patient": patient,
        "events": shown,
        "truncated": len(shown) == TIMELINE_LIMIT,
        "limit": TIMELINE_LIMIT,
    }
    return TemplateResponse(request, "admin/audit/accessevent/timeline.html", context)


def patient_timeline(model_admin, request: HttpRequest, code: UUID) -> HttpResponse:
    """Everything that happened to one patient's records, oldest first."""
    from portal.models import Patient

    scoped = model_admin.get_queryset(request)
    patient = Patient.objects.filter(code=code).select_related("practice").first()
    if patient is None:
        raise Http404
    if not request.user.is_superuser:
        from portal.admin.scope import practice_admin

        member = practice_admin(request)
        if member is None or member.practice_id != patient.practice_id:
            raise Http404
    events = scoped.filter(patient=patient)
    return _timeline(
        model_admin, request, events, f"Access timeline of {patient}", "patient", patient
    )


def link_timeline(model_admin, request: HttpRequest, code: UUID) -> HttpResponse:
    """Everything that happened through one share link, oldest first."""
    events = model_admin.get_queryset(request).filter(share_code=code)
    first = events.exclude(patient=None).select_related("patient__practice").order_by("seq").first()
    if first is None:
        raise Http404
    return _timeline(
        model_admin, request, events, f"Timeline of link {code}", "link", first.patient
    )
