from django.contrib import admin

from portal.admin_scope import PracticeScopedAdmin
from portal.models import (
    Attachment,
    BusinessAssociateAgreement,
    Instance,
    Patient,
    Practice,
    RetentionPolicy,
    Series,
    StaffMember,
    StoredObject,
    Study,
)


@admin.register(Practice)
class PracticeAdmin(PracticeScopedAdmin):
    practice_path = "pk"
    practice_admin_can_change = True
    list_display = ("name", "slug", "phone", "share_default_days", "share_max_days")
    search_fields = ("name", "slug")


@admin.register(StaffMember)
class StaffMemberAdmin(PracticeScopedAdmin):
    audit_reads = False
    list_display = ("user", "practice", "role")
    list_filter = ("practice", "role")
    search_fields = ("user__username", "user__email")


@admin.register(Patient)
class PatientAdmin(PracticeScopedAdmin):
    audit_reads = True
    list_display = ("name", "patient_id", "birth_date", "practice", "last_visit")
    list_filter = ("practice",)
    search_fields = ("name_folded", "patient_id")
    filter_horizontal = ("assigned_staff",)


class SeriesInline(admin.TabularInline):
    model = Series
    fields = ("number", "modality", "description", "decode_error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Study)
class StudyAdmin(PracticeScopedAdmin):
    audit_reads = True
    practice_admin_can_change = True
    list_display = ("patient", "study_date", "modalities", "description", "legal_hold")
    list_filter = ("practice", "modalities", "legal_hold")
    search_fields = ("patient__name_folded", "patient__patient_id", "study_uid", "accession_number")
    date_hierarchy = "study_date"
    readonly_fields = ("study_uid",)
    inlines = [SeriesInline]


@admin.register(Series)
class SeriesAdmin(PracticeScopedAdmin):
    practice_path = "study__practice"
    audit_reads = True
    list_display = ("study", "number", "modality", "description")
    list_filter = ("modality",)
    readonly_fields = ("series_uid", "thumbnail")


@admin.register(Instance)
class InstanceAdmin(PracticeScopedAdmin):
    audit_reads = True
    list_display = ("sop_instance_uid", "series", "instance_number", "transfer_syntax_uid")
    search_fields = ("sop_instance_uid",)
    readonly_fields = [f.name for f in Instance._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Attachment)
class AttachmentAdmin(PracticeScopedAdmin):
    audit_reads = True
    list_display = ("title", "kind", "patient", "created_at")
    list_filter = ("kind",)
    readonly_fields = ("blob", "thumbnail", "content_type", "width", "height")


@admin.register(StoredObject)
class StoredObjectAdmin(admin.ModelAdmin):
    list_display = ("code", "key_id", "plain_size", "created_at", "shredded_at")
    list_filter = ("key_id",)
    exclude = ("wrapped_key",)
    readonly_fields = (
        "code",
        "storage_name",
        "key_id",
        "plain_size",
        "segment_size",
        "sha256",
        "crc32",
        "created_at",
        "shredded_at",
    )

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(BusinessAssociateAgreement)
class BusinessAssociateAgreementAdmin(PracticeScopedAdmin):
    practice_admin_can_add = True
    practice_admin_can_change = True
    list_display = ("associate", "practice", "signed_on", "expires_on", "is_expired")
    list_filter = ("practice",)
    search_fields = ("associate",)


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(PracticeScopedAdmin):
    practice_admin_can_add = True
    practice_admin_can_change = True
    list_display = ("name", "practice", "modality", "retain_years", "active")
    list_filter = ("practice", "active")
