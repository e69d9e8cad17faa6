"""Find patients and studies: name, patient ID, birth date, study dates, modality.

Searches are POSTed, pager included, so names and birth dates never sit in a URL: not in
the browser's history on a shared front-desk computer, not in a proxy's or server's log.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

import audit
from audit.models import Action
from portal.models import Series
from portal.models.imaging import fold
from portal.workspace.decorators import staff_required
from portal.workspace.forms import SearchForm

PAGE_SIZE = 20


@require_http_methods(["GET", "POST"])
@staff_required
def search(request: HttpRequest) -> HttpResponse:
    """List the studies in scope that match; the home page of the workspace (recent first)."""
    scope = request.scope
    form = SearchForm(request.POST if request.method == "POST" else None)
    page_number = request.POST.get("page") if form.is_bound else request.GET.get("page")
    studies = (
        scope.studies()
        .select_related("patient")
        .prefetch_related(
            Prefetch("series", queryset=Series.objects.order_by("number", "created_at"))
        )
    )
    page = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["q"]:
            q = data["q"].strip()
            studies = studies.filter(
                Q(patient__name_folded__contains=fold(q)) | Q(patient__patient_id__iexact=q)
            )
        if data["birth_date"]:
            studies = studies.filter(patient__birth_date=data["birth_date"])
        if data["date_from"]:
            studies = studies.filter(study_date__gte=data["date_from"])
        if data["date_to"]:
            studies = studies.filter(study_date__lte=data["date_to"])
        if data["modality"]:
            studies = studies.filter(
                Q(modalities__icontains=data["modality"]) | Q(series__modality=data["modality"])
            ).distinct()
        page = Paginator(studies.order_by("-study_date", "-created_at"), PAGE_SIZE).get_page(
            page_number
        )
        audit.record(
            Action.SEARCH,
            request=request,
            detail={"fields": form.used_fields(), "results": page.paginator.count},
            **scope.audit_kwargs(),
        )
    elif not form.is_bound:
        page = Paginator(studies.order_by("-created_at"), PAGE_SIZE).get_page(page_number)
        audit.record(
            Action.SEARCH,
            request=request,
            detail={"fields": [], "results": page.paginator.count, "list": "recent"},
            **scope.audit_kwargs(),
        )
    return render(
        request,
        "portal/search.html",
        {"form": form, "page": page, "scope": scope, "recent": not form.is_bound},
        status=400 if form.is_bound and not form.is_valid() else 200,
    )
