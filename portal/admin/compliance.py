"""The back office's compliance pages: BAAs, retention and legal holds, purges, alerts."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.functional import lazy
from django.utils.html import format_html, format_html_join
from django.utils.http import content_disposition_header
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from portal import vault
from portal.admin.scope import PracticeScopedAdmin
from portal.compliance import alerts, holds, retention
from portal.models import (
    Alert,
    BaaDocument,
    BusinessAssociateAgreement,
    ComplianceSettings,
    Disclosure,
    LegalHold,
    Purge,
    RetentionPolicy,
)
from portal.vault.uploads import NotStored, SealedUpload, VaultUploadHandler

DOCUMENT_NOT_STORED = (
    "The signed document could not be stored just now, so nothing was saved. Please try again "
    "later; if it happens again, tell whoever runs the portal's server."
)
DOCUMENT_TYPES = {
    b"%PDF-": "application/pdf",
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG": "image/png",
}


def _document_type(head: bytes) -> str | None:
    return next((kind for magic, kind in DOCUMENT_TYPES.items() if head.startswith(magic)), None)


def _document_limit_mb() -> int:
    return settings.PORTAL_BAA_DOCUMENT_MAX_BYTES // 2**20


class BaaForm(forms.ModelForm):
    signed_document = forms.FileField(
        required=False,
        help_text=lazy(
            lambda: (
                f"The signed agreement: PDF, JPEG or PNG, up to {_document_limit_mb()} MB. "
                "It is encrypted into the vault as it arrives."
            ),
            str,
        )(),
    )
    upload_handler: VaultUploadHandler | None = None

    class Meta:
        model = BusinessAssociateAgreement
        fields = (
            "practice", "associate", "services", "signed_on", "effective_on", "expires_on",
            "auto_renews", "notes",
        )  # fmt: skip

    def clean_signed_document(self):
        upload = self.cleaned_data.get("signed_document")
        if self.upload_handler is not None and self.upload_handler.too_large:
            raise ValidationError(
                f"The document is larger than {_document_limit_mb()} MB; scan it at a lower "
                "resolution or in black and white."
            )
        if upload is not None and not isinstance(upload, SealedUpload):
            raise ValidationError("The document could not be stored; send it again.")
        if upload is not None and _document_type(upload.head) is None:
            raise ValidationError("The document must be a PDF, JPEG or PNG file.")
        return upload


@admin.register(BusinessAssociateAgreement)
class BusinessAssociateAgreementAdmin(PracticeScopedAdmin):
    form = BaaForm
    practice_admin_can_add = True
    practice_admin_can_change = True
    list_display = (
        "associate", "status_badge", "expires_on", "signed_on", "auto_renews", "practice",
    )  # fmt: skip
    list_filter = ("practice", "auto_renews")
    search_fields = ("associate",)
    readonly_fields = ("stored_document", "earlier_documents")

    class Media:
        css = {"all": ("portal/backoffice.css",)}

    @admin.display(description="status")
    def status_badge(self, obj: BusinessAssociateAgreement):
        status = obj.status
        label = BusinessAssociateAgreement.Status(status).label
        return format_html('<span class="baa-status baa-{}">{}</span>', status, label)

    @admin.display(description="document on file")
    def stored_document(self, obj: BusinessAssociateAgreement):
        doc = obj.document
        if doc is None or doc.wrapped_key is None:
            return "None on file"
        url = reverse("admin:portal_businessassociateagreement_document", args=[obj.pk])
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">Open {}</a> ({} KB, encrypted in the '
            "vault with AES-256-GCM under key {}, SHA-256 {}…)",
            url, obj.document_name or "the document", max(1, doc.plain_size // 1024),
            doc.key_id, doc.sha256[:12],
        )  # fmt: skip

    @admin.display(description="earlier versions")
    def earlier_documents(self, obj: BusinessAssociateAgreement):
        """Documents this one replaced: an auditor may ask for the one in force on a day."""
        earlier = [d for d in obj.documents.all() if d.stored_id != obj.document_id]
        if not earlier:
            return "None"
        name = "admin:portal_businessassociateagreement_version"
        return format_html_join(
            mark_safe("<br>"),  # noqa: S308 - a constant
            '<a href="{}" target="_blank" rel="noopener">Open {}</a> (on file from {})',
            (
                (reverse(name, args=[obj.pk, d.pk]), d.name, f"{d.uploaded_at:%Y-%m-%d}")
                for d in earlier
            ),
        )

    def _with_vault_uploads(self, view, request: HttpRequest, *args):
        """Run an add or change view with the signed document encrypted as it arrives.

        The handler must be in place before anything reads the request's body, CSRF checks
        included, so these views are exempt from the middleware and checked here instead.
        """
        handler = VaultUploadHandler(request, settings.PORTAL_BAA_DOCUMENT_MAX_BYTES)
        request.upload_handlers = [handler]
        request._baa_upload_handler = handler
        try:
            return csrf_protect(view)(request, *args)
        except NotStored:
            messages.error(request, DOCUMENT_NOT_STORED)
            return redirect(request.path)
        finally:
            handler.discard_unsaved()

    @csrf_exempt
    def add_view(self, request: HttpRequest, form_url="", extra_context=None):
        return self._with_vault_uploads(super().add_view, request, form_url, extra_context)

    @csrf_exempt
    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        view = super().change_view
        return self._with_vault_uploads(view, request, object_id, form_url, extra_context)

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.upload_handler = getattr(request, "_baa_upload_handler", None)
        return form

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        upload = form.cleaned_data.get("signed_document")
        if upload is not None:
            upload.stored.save(force_insert=True)
            obj.document = upload.stored
            obj.document_name = "".join(c for c in upload.name if c.isprintable())[:200]
        super().save_model(request, obj, form, change)
        if upload is not None:
            BaaDocument.objects.create(
                baa=obj, stored=upload.stored, name=obj.document_name, uploaded_by=request.user
            )

    def get_urls(self):
        document = self.admin_site.admin_view(self.document_view)
        return [
            path(
                "<int:pk>/document/",
                document,
                name="portal_businessassociateagreement_document",
            ),
            path(
                "<int:pk>/document/<int:version>/",
                document,
                name="portal_businessassociateagreement_version",
            ),
            *super().get_urls(),
        ]

    def document_view(self, request: HttpRequest, pk: int, version: int | None = None):
        baa = self.get_queryset(request).filter(pk=pk).select_related("document").first()
        if baa is None:
            raise Http404
        if version is None:
            stored, name = baa.document, baa.document_name
        else:
            earlier = baa.documents.filter(pk=version).select_related("stored").first()
            stored, name = (earlier.stored, earlier.name) if earlier else (None, "")
        if stored is None or stored.wrapped_key is None:
            raise Http404
        head = vault.read_bytes(stored, 0, 8)
        response = StreamingHttpResponse(
            vault.iter_range(stored), content_type=_document_type(head) or "application/pdf"
        )
        response["Content-Length"] = str(stored.plain_size)
        response["Content-Disposition"] = content_disposition_header(False, name or "agreement.pdf")
        response["Cache-Control"] = "no-store"
        return response


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(PracticeScopedAdmin):
    practice_admin_can_add = True
    practice_admin_can_change = True
    list_display = (
        "name", "practice", "record_kind", "modality", "count_from", "retain_years",
        "majority_age", "years_after_majority", "active",
    )  # fmt: skip
    list_filter = ("practice", "record_kind", "active")


@admin.register(ComplianceSettings)
class ComplianceSettingsAdmin(PracticeScopedAdmin):
    practice_admin_can_add = True
    practice_admin_can_change = True
    list_display = (
        "practice", "auto_purge", "downloads_per_hour", "addresses_per_link", "patients_per_day",
    )  # fmt: skip


@admin.register(LegalHold)
class LegalHoldAdmin(PracticeScopedAdmin):
    patient_path = "patient"
    # Found by typing (each patient named is a recorded read), not a list of every patient.
    autocomplete_fields = ("patient", "study")
    practice_admin_can_add = True
    list_display = ("patient", "held", "reason", "set_by", "set_at", "released_at")
    list_filter = ("practice",)
    fields = ("patient", "study", "reason", "set_by", "set_at", "released_by", "released_at")
    readonly_fields = ("set_by", "set_at", "released_by", "released_at")
    actions = ["release"]

    @admin.display(description="holds")
    def held(self, obj: LegalHold) -> str:
        if obj.study_id:
            return str(obj.study)
        return "A study since shredded" if obj.study_code else "Every record of the patient"

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        if not change:
            holds.set_hold(obj, by=request.user, request=request)

    @admin.action(description="Release the selected holds")
    def release(self, request: HttpRequest, queryset) -> None:
        count = holds.release(queryset, by=request.user, request=request)
        self.message_user(request, f"{count} hold(s) released.")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Holds are set and released, never edited, so who set them and why stays true.
        return obj is None and self.has_module_permission(request)


@admin.register(Purge)
class PurgeAdmin(PracticeScopedAdmin):
    """The list of records due for deletion, which an admin approves before they go."""

    patient_path = "patient"
    # Found by typing (each patient named is a recorded read), not a list of every patient.
    autocomplete_fields = ("patient",)
    practice_admin_can_add = True
    list_display = (
        "patient",
        "kind",
        "record",
        "rule",
        "due_on",
        "status",
        "approved_by",
        "done_at",
    )
    list_filter = ("status", "kind", "practice")
    fields = ("patient", "reason")
    actions = ["approve", "cancel"]

    @admin.display(description="record")
    def record(self, obj: Purge) -> str:
        if obj.study_id:
            return f"Study of {obj.study.study_date or 'unknown date'} ({obj.study.modalities})"
        if obj.attachment_id:
            return obj.attachment.get_kind_display()
        return "Every record of the patient" if obj.kind == Purge.Kind.ERASURE else "Shredded"

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return () if obj is None else [f.name for f in Purge._meta.fields]

    def get_fields(self, request: HttpRequest, obj=None):
        return self.fields if obj is None else [f.name for f in Purge._meta.fields]

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        if not change:
            made = retention.request_erasure(
                obj.patient, by=request.user, reason=obj.reason, request=request
            )
            obj.pk = made.pk
            self.message_user(
                request, "Erasure requested: approve it in this list to carry it out."
            )

    def save_related(self, request, form, formsets, change) -> None:
        return None

    def log_addition(self, request, obj, message):
        return None

    @admin.action(description="Approve: shred the selected records in the next daily run")
    def approve(self, request: HttpRequest, queryset) -> None:
        count = retention.approve(list(queryset), by=request.user, request=request)
        self.message_user(request, f"{count} record(s) approved for deletion.", messages.WARNING)

    @admin.action(description="Cancel: keep the selected records")
    def cancel(self, request: HttpRequest, queryset) -> None:
        count = retention.cancel(list(queryset), by=request.user, request=request)
        self.message_user(request, f"{count} record(s) kept.")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and self.has_module_permission(request)


@admin.register(Disclosure)
class DisclosureAdmin(PracticeScopedAdmin):
    patient_path = "patient"
    # Found by typing (each patient named is a recorded read), not a list of every patient.
    autocomplete_fields = ("patient",)
    practice_admin_can_add = True
    list_display = ("disclosed_on", "patient", "recipient", "medium", "purpose", "recorded_by")
    list_filter = ("medium", "practice")
    fields = (
        "patient",
        "disclosed_on",
        "recipient",
        "recipient_address",
        "what",
        "purpose",
        "medium",
    )

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        if not change:
            obj.recorded_by = request.user
            obj.practice = obj.patient.practice
        super().save_model(request, obj, form, change)


class AlertForm(forms.ModelForm):
    class Meta:
        model = Alert
        fields = ("note",)

    def clean_note(self) -> str:
        note = self.cleaned_data["note"].strip()
        if not note:
            raise ValidationError("Say what you found and did before acknowledging.")
        return note


@admin.register(Alert)
class AlertAdmin(PracticeScopedAdmin):
    form = AlertForm
    practice_admin_can_change = True
    list_display = (
        "created_at",
        "kind",
        "share_code",
        "user",
        "count",
        "threshold",
        "acknowledged",
    )
    list_filter = ("kind", ("acknowledged_at", admin.EmptyFieldListFilter), "practice")
    readonly_fields = ("kind", "created_at", "share_code", "user", "count", "threshold",
                       "acknowledged_by", "acknowledged_at")  # fmt: skip
    fields = (*readonly_fields, "note")

    @admin.display(boolean=True)
    def acknowledged(self, obj: Alert) -> bool:
        return obj.acknowledged_at is not None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        alerts.acknowledge(obj, by=request.user, note=form.cleaned_data["note"])
