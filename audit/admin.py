"""The access history in the back office: read-only for everyone, filtered, exported, timelines."""

from __future__ import annotations

import functools

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from audit import history
from audit.models import AccessEvent
from portal.admin.scope import PracticeScopedAdmin, practice_admin

# Filters the list accepts from the address besides its sidebar: a date range, and one patient
# or one link by id (the timelines and the patient page link here with them).
EXTRA_LOOKUPS = ("created_at__date__gte", "created_at__date__lte", "patient__code", "share_code")


class StaffFilter(admin.SimpleListFilter):
    title = "staff member"
    parameter_name = "staff"

    def lookups(self, request: HttpRequest, model_admin):
        users = get_user_model().objects.filter(staffmember__isnull=False)
        member = None if request.user.is_superuser else practice_admin(request)
        if member is not None:
            users = users.filter(staffmember__practice_id=member.practice_id)
        return [(str(u.pk), u.get_username()) for u in users.order_by("username")]

    def queryset(self, request: HttpRequest, queryset):
        value = self.value()
        if not value:
            return queryset
        if not (value.isascii() and value.isdigit()) or int(value) >= 2**63:
            raise IncorrectLookupParameters("staff")  # the list says so (?e=1), no error page
        return queryset.filter(user_id=int(value))


@admin.register(AccessEvent)
class AccessEventAdmin(PracticeScopedAdmin):
    """Read-only for everyone, superusers included: the access history is append-only."""

    patient_path = "patient"
    change_list_template = "admin/audit/accessevent/change_list.html"
    list_display = (
        "created_at", "action", "outcome", "user", "patient_timeline", "link_timeline",
        "ip_address",
    )  # fmt: skip
    list_filter = ("action", "outcome", StaffFilter, "created_at")
    search_fields = ("patient__name_folded", "patient__patient_id", "user__username", "ip_address")
    date_hierarchy = "created_at"
    list_select_related = ("user", "patient")
    actions = None

    def get_list_filter(self, request: HttpRequest):
        base = super().get_list_filter(request)
        return ("practice", *base) if request.user.is_superuser else base

    def changelist_view(self, request: HttpRequest, extra_context=None):
        empty = [k for k in EXTRA_LOOKUPS if k in request.GET and not request.GET[k]]
        if empty:
            # The date form sends both ends; an empty one means "no limit", not a bad date.
            query = request.GET.copy()
            for key in empty:
                del query[key]
            return HttpResponseRedirect(f"{request.path}?{query.urlencode()}")
        return super().changelist_view(request, extra_context)

    def lookup_allowed(self, lookup: str, value, request=None) -> bool:
        return lookup in EXTRA_LOOKUPS or super().lookup_allowed(lookup, value, request)

    @admin.display(description="patient", ordering="patient__name_folded")
    def patient_timeline(self, obj: AccessEvent):
        if obj.patient_id is None:
            return "-"
        url = reverse("admin:audit_accessevent_patient_timeline", args=[obj.patient.code])
        return format_html('<a href="{}">{}</a>', url, obj.patient)

    @admin.display(description="link")
    def link_timeline(self, obj: AccessEvent):
        if obj.share_code is None:
            return "-"
        url = reverse("admin:audit_accessevent_link_timeline", args=[obj.share_code])
        return format_html('<a href="{}">{}…</a>', url, str(obj.share_code)[:8])

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in AccessEvent._meta.fields]

    def get_urls(self):
        def wrap(view):
            return self.admin_site.admin_view(functools.partial(view, self))

        return [
            path("export/", wrap(history.export), name="audit_accessevent_export"),
            path(
                "timeline/patient/<uuid:code>/",
                wrap(history.patient_timeline),
                name="audit_accessevent_patient_timeline",
            ),
            path(
                "timeline/link/<uuid:code>/",
                wrap(history.link_timeline),
                name="audit_accessevent_link_timeline",
            ),
            *super().get_urls(),
        ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
