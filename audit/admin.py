from django.contrib import admin

from audit.models import AccessEvent
from portal.admin_scope import PracticeScopedAdmin


@admin.register(AccessEvent)
class AccessEventAdmin(PracticeScopedAdmin):
    """Read-only: the access history is append-only."""

    list_display = (
        "created_at",
        "action",
        "outcome",
        "user",
        "share_code",
        "patient",
        "ip_address",
    )
    list_filter = ("action", "outcome", "practice")
    search_fields = ("patient__name_folded", "patient__patient_id", "user__username", "ip_address")
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in AccessEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
