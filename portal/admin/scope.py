"""The back office for practice admins: their own practice's rows only, reads audited.

Superusers (the portal's operators) see everything; a practice admin (staff role "admin"
with Django staff status) sees and edits only what belongs to their practice; nobody else
gets in. The same minimum-necessary rule as the workspace, applied to the Django admin.
"""

from __future__ import annotations

import json

from django.apps import apps
from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.db import transaction
from django.http import HttpRequest

import audit
from audit.models import Action
from portal.admin.related import RelationsTheReaderMayOpen
from portal.models import Patient, Practice, Role, StaffMember


def practice_admin(request: HttpRequest) -> StaffMember | None:
    """Return the requester's membership if they are a practice admin."""
    user = request.user
    if not user.is_active or not user.is_staff:
        return None
    member = StaffMember.objects.select_related("practice").filter(user=user).first()
    return member if member is not None and member.role == Role.ADMIN else None


class PracticeScopedAdmin(RelationsTheReaderMayOpen, admin.ModelAdmin):
    """ModelAdmin limited to the practice admin's own practice."""

    practice_path = "practice"
    practice_admin_can_add = False
    practice_admin_can_change = False
    # The path from a row to the patient it shows; set on every admin showing patient data,
    # so that its list and change pages are recorded as reads of that patient.
    patient_path: str | None = None

    def get_queryset(self, request: HttpRequest):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        member = practice_admin(request)
        if member is None:
            return qs.none()
        return qs.filter(**{self.practice_path: member.practice_id})

    def get_list_filter(self, request: HttpRequest):
        filters = super().get_list_filter(request)
        if request.user.is_superuser:
            return filters
        # A practice admin sees one practice; a filter by practice would name all of them.
        return tuple(f for f in filters if (f[0] if isinstance(f, tuple) else f) != "practice")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or practice_admin(request) is not None

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        if request.user.is_superuser:
            return super().has_add_permission(request)
        return self.practice_admin_can_add and practice_admin(request) is not None

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        if request.user.is_superuser:
            return super().has_change_permission(request, obj)
        return self.practice_admin_can_change and practice_admin(request) is not None

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def get_exclude(self, request: HttpRequest, obj=None):
        """A practice admin's rows always belong to their practice: no choice to make."""
        exclude = list(super().get_exclude(request, obj) or [])
        has_practice = any(f.name == "practice" for f in self.model._meta.fields)
        if has_practice and not request.user.is_superuser and self.practice_path == "practice":
            exclude.append("practice")
        return exclude

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        member = None if request.user.is_superuser else practice_admin(request)
        if member is not None and db_field.related_model is Practice:
            kwargs["queryset"] = Practice.objects.filter(pk=member.practice_id)
        elif member is not None and hasattr(db_field.related_model, "practice"):
            kwargs["queryset"] = db_field.related_model._default_manager.filter(
                practice=member.practice
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        member = None if request.user.is_superuser else practice_admin(request)
        if member is not None and hasattr(obj, "practice_id"):
            obj.practice = member.practice
        super().save_model(request, obj, form, change)

    def _patients_of(self, pks: list) -> list[int]:
        if self.patient_path == "pk":
            return sorted(set(pks))
        rows = self.model._default_manager.filter(
            pk__in=pks, **{f"{self.patient_path}__isnull": False}
        )
        return sorted(set(rows.values_list(self.patient_path, flat=True)))

    def _record_reads(self, request: HttpRequest, pks: list, *, page: str) -> None:
        """Record one read per patient shown, so each patient's history names this page."""
        meta = self.model._meta
        patients = Patient.objects.filter(pk__in=self._patients_of(pks)).only("pk", "practice_id")
        for patient in patients:
            audit.record(
                Action.ADMIN_VIEW,
                request=request,
                practice=patient.practice,
                patient=patient,
                detail={"page": page, "list": f"{meta.app_label}.{meta.model_name}"},
            )

    def changelist_view(self, request: HttpRequest, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl") if response else None
        if self.patient_path and response.status_code == 200 and changelist is not None:
            pks = [obj.pk for obj in changelist.result_list]
            with transaction.atomic():
                self._record_reads(request, pks, page="list")
        return response

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if self.patient_path and response.status_code == 200:
            obj = self.get_queryset(request).filter(pk=object_id).first()
            if obj is not None:
                patient_ids = self._patients_of([obj.pk])
                audit.record(
                    Action.ADMIN_VIEW,
                    request=request,
                    practice=getattr(obj, "practice", None),
                    patient=Patient.objects.filter(pk__in=patient_ids).first(),
                    obj=obj,
                    detail={"page": "change"},
                )
        return response


def record_autocomplete_reads(site, request: HttpRequest, response) -> None:  # noqa: ANN001
    """A picker's suggestions name records (patients, studies): one read per patient named."""
    if response.status_code != 200:
        return
    try:
        source = apps.get_model(request.GET["app_label"], request.GET["model_name"])
        remote = source._meta.get_field(request.GET["field_name"]).remote_field.model
    except (KeyError, LookupError, AttributeError, FieldDoesNotExist):
        return
    model_admin = site._registry.get(remote)
    if not isinstance(model_admin, PracticeScopedAdmin) or not model_admin.patient_path:
        return
    pks = [row["id"] for row in json.loads(response.content).get("results", [])]
    with transaction.atomic():
        model_admin._record_reads(request, pks, page="autocomplete")
