"""Find patients and studies: name, patient ID, birth date, study dates, modality.

Searches are POSTed, so names and birth dates never sit in a URL in plain form: not in the
browser's history on a shared front-desk computer, not in a proxy's or server's log. The POST
redirects to /?results=<the criteria, sealed>, so the results, their pages and Back are plain
GETs (portal.workspace.saved_searches).
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

import audit
from audit.models import Action
from portal.models import Series
from portal.models.imaging import fold
from portal.workspace import saved_searches
from portal.workspace.decorators import staff_required
from portal.workspace.forms import SearchForm

PAGE_SIZE = 20
# Part of a patient ID finds it from this many characters on.
MIN_ID_PART = 3


def _name_or_id(q: str) -> Q:
    """Each word of a name, in any order ("garcia maria", "Garcia, Maria"), or the ID."""
    words = [w for w in re.split(r"[\s,;]+", fold(q)) if w]
    by_name = Q()
    for word in words:
        by_name &= Q(patient__name_folded__contains=word)
    by_id = Q(patient__patient_id__iexact=q)
    if len(q) >= MIN_ID_PART:
        by_id |= Q(patient__patient_id__icontains=q)
    return (by_name | by_id) if words else by_id


@require_http_methods(["GET", "POST"])
@staff_required
def search(request: HttpRequest) -> HttpResponse:
    """List the studies in scope that match; the home page of the workspace (recent first)."""
    if request.method == "POST":
        form = SearchForm(request.POST)
        if not form.is_valid():
            return _render(request, form, None, ref="", status=400)
        criteria = {name: request.POST.get(name, "") for name in form.fields}
        response = redirect(f"/?{urlencode({'results': saved_searches.save(request, criteria)})}")
        response.status_code = 303  # the results are fetched by GET: Back and reload work
        return response
    ref = request.GET.get("results", "")
    criteria = saved_searches.load(request, ref) if ref else None
    if ref and criteria is None:
        # Older than a working day, or another staff member's: ask again.
        return _render(request, SearchForm(), None, ref="", ended=True)
    form = SearchForm(criteria)
    studies = (
        request.scope.studies()
        .select_related("patient")
        .prefetch_related(
            Prefetch("series", queryset=Series.objects.order_by("number", "created_at"))
        )
    )
    if not form.is_bound:
        page = Paginator(studies.order_by("-created_at"), PAGE_SIZE).get_page(
            request.GET.get("page")
        )
        _audit(request, {"fields": [], "results": page.paginator.count, "list": "recent"})
        return _render(request, form, page, ref="")
    if not form.is_valid():  # kept valid; a key change may still make it unreadable
        return _render(request, SearchForm(), None, ref="", ended=True)
    data = form.cleaned_data
    if data["q"]:
        studies = studies.filter(_name_or_id(data["q"].strip()))
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
        request.GET.get("page")
    )
    _audit(request, {"fields": form.used_fields(), "results": page.paginator.count})
    return _render(request, form, page, ref=ref)


def _audit(request: HttpRequest, detail: dict) -> None:
    audit.record(Action.SEARCH, request=request, detail=detail, **request.scope.audit_kwargs())


def _render(request, form, page, *, ref: str, status: int = 200, ended: bool = False):  # noqa: ANN001, ANN202
    context = {"form": form, "page": page, "scope": request.scope, "ref": ref,
               "recent": not form.is_bound, "ended": ended}  # fmt: skip
    return render(request, "portal/search.html", context, status=status)
