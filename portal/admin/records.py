import functools

from django.contrib import admin
from django.urls import path, reverse
from django.utils.html import format_html

from portal.admin.disclosures import disclosures_view
from portal.admin.scope import PracticeScopedAdmin
from portal.models import (
    Attachment,
    Instance,
    Patient,
    Practice,
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

    def get_readonly_fields(self, request, obj=None):  # noqa: ANN001
        # Staff sign in as <slug>.<name>: the operator names practices, not their admins.
        return () if request.user.is_superuser else ("slug",)


@admin.register(StaffMember)
class StaffMemberAdmin(PracticeScopedAdmin):
    list_display = ("user", "practice", "role")
    list_filter = ("practice", "role")
    search_fields = ("user__username", "user__email")


@admin.register(Patient)
class PatientAdmin(PracticeScopedAdmin):
    patient_path = "pk"
    list_display = ("name", "patient_id", "birth_date", "practice", "last_visit")
    list_filter = ("practice",)
    search_fields = ("name_folded", "patient_id")
    filter_horizontal = ("assigned_staff",)
    readonly_fields = ("records_kept",)

    @admin.display(description="records")
    def records_kept(self, obj: Patient):
        if obj.pk is None:
            return "-"
        return format_html(
            '<a href="{}">Accounting of disclosures</a> · <a href="{}">Access timeline</a>',
            reverse("admin:portal_patient_disclosures", args=[obj.pk]),
            reverse("admin:audit_accessevent_patient_timeline", args=[obj.code]),
        )

    def get_urls(self):
        view = self.admin_site.admin_view(functools.partial(disclosures_view, self))
        return [
            path("<int:pk>/disclosures/", view, name="portal_patient_disclosures"),
            *super().get_urls(),
        ]


class SeriesInline(admin.TabularInline):
    model = Series
    fields = ("number", "modality", "description", "decode_error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Study)
class StudyAdmin(PracticeScopedAdmin):
    patient_path = "patient"
    practice_admin_can_change = True
    list_display = ("patient", "study_date", "modalities", "description", "legal_hold")
    list_filter = ("practice", "modalities", "legal_hold")
    search_fields = ("patient__name_folded", "patient__patient_id", "study_uid", "accession_number")
    date_hierarchy = "study_date"
    # What the images say (patient, date, UIDs) and the hold flag are not edited here: holds
    # are set and released under Legal holds, where who and why is recorded, and the date
    # decides retention.
    readonly_fields = ("study_uid", "patient", "study_date", "legal_hold", "practice")
    inlines = [SeriesInline]


@admin.register(Series)
class SeriesAdmin(PracticeScopedAdmin):
    practice_path = "study__practice"
    patient_path = "study__patient"
    list_display = ("study", "number", "modality", "description")
    list_filter = ("modality",)
    readonly_fields = ("series_uid", "thumbnail")


@admin.register(Instance)
class InstanceAdmin(PracticeScopedAdmin):
    patient_path = "series__study__patient"
    list_display = ("sop_instance_uid", "series", "instance_number", "transfer_syntax_uid")
    search_fields = ("sop_instance_uid",)
    readonly_fields = [f.name for f in Instance._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Attachment)
class AttachmentAdmin(PracticeScopedAdmin):
    patient_path = "patient"
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
