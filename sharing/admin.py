from django.contrib import admin

from portal.admin.scope import PracticeScopedAdmin
from sharing.models import ShareCode, ShareLink, VerificationFailure


@admin.register(ShareLink)
class ShareLinkAdmin(PracticeScopedAdmin):
    """Read-only: links are issued, revoked and extended in the workspace, with its checks."""

    patient_path = "patient"

    list_display = (
        "code",
        "practice",
        "patient",
        "recipient_kind",
        "expires_at",
        "status",
        "open_count",
        "download_count",
    )
    list_filter = ("practice", "recipient_kind")
    exclude = ("token_hash", "password_hash")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(VerificationFailure)
class VerificationFailureAdmin(admin.ModelAdmin):
    list_display = ("created_at", "address", "share")
    readonly_fields = ("created_at", "address", "share")


@admin.register(ShareCode)
class ShareCodeAdmin(admin.ModelAdmin):
    list_display = ("share", "created_at", "expires_at", "used_at")
    exclude = ("code_hash",)
    readonly_fields = ("share", "created_at", "expires_at", "used_at")
