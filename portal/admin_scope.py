"""The back office for practice admins: their own practice's rows only, reads audited.

Superusers (the portal's operators) see everything; a practice admin (staff role "admin"
with Django staff status) sees and edits only what belongs to their practice; nobody else
gets in. The same minimum-necessary rule as the workspace, applied to the Django admin.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

import audit
from audit.models import Action
from portal.models import Practice, Role, StaffMember


def practice_admin(request: HttpRequest) -> StaffMember | None:
    """Return the requester's membership if they are a practice admin."""
    user = request.user
    if not user.is_active or not user.is_staff:
        return None
    member = StaffMember.objects.select_related("practice").filter(user=user).first()
    return member if member is not None and member.role == Role.ADMIN else None


class PracticeScopedAdmin(admin.ModelAdmin):
    """ModelAdmin limited to the practice admin's own practice."""

    practice_path = "practice"
    practice_admin_can_add = False
    practice_admin_can_change = False
    audit_reads = False

    def get_queryset(self, request: HttpRequest):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        member = practice_admin(request)
        if member is None:
            return qs.none()
        return qs.filter(**{self.practice_path: member.practice})

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

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if self.audit_reads and response.status_code == 200:
            obj = self.get_queryset(request).filter(pk=object_id).first()
            if obj is not None:
                patient = obj if type(obj).__name__ == "Patient" else getattr(obj, "patient", None)
                audit.record(
                    Action.ADMIN_VIEW,
                    request=request,
                    practice=getattr(obj, "practice", None),
                    patient=patient,
                    obj=obj,
                )
        return response
