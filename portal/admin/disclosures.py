"""The accounting of disclosures of one patient, in the back office: a printable page and CSV."""

from __future__ import annotations

from datetime import date

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils.http import content_disposition_header

import audit
from audit.models import Action
from portal.compliance import disclosures


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def disclosures_view(model_admin, request: HttpRequest, pk: int) -> HttpResponse:
    """Show (or, with ?format=csv, export) a patient's accounting for a chosen period."""
    patient = model_admin.get_queryset(request).filter(pk=pk).select_related("practice").first()
    if patient is None:
        raise Http404
    start, end = disclosures.period(_day(request.GET.get("from")), _day(request.GET.get("to")))
    entries = disclosures.account(patient, start, end)
    as_csv = request.GET.get("format") == "csv"
    audit.record(
        Action.ADMIN_VIEW,
        request=request,
        practice=patient.practice,
        patient=patient,
        obj=patient,
        detail={"page": "disclosures.csv" if as_csv else "disclosures", "entries": len(entries)},
    )
    if as_csv:
        response = StreamingHttpResponse(disclosures.csv_rows(entries), content_type="text/csv")
        response["Content-Disposition"] = content_disposition_header(
            True, f"disclosures-{patient.code}-{start}-{end}.csv"
        )
        response["Cache-Control"] = "no-store"
        return response
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Accounting of disclosures",
        "patient": patient,
        "practice": patient.practice,
        "entries": entries,
        "start": start,
        "end": end,
        "earliest": disclosures.period(None, None)[0],
        "max_years": disclosures.MAX_YEARS,
    }
    return TemplateResponse(request, "admin/portal/patient/disclosures.html", context)
