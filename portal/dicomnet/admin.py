"""The DICOM network in the back office: a practice admin sets its AE title and devices."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from portal.admin.scope import PracticeScopedAdmin
from portal.models import Arrival, DicomNode, DicomPeer, Transfer

# Certificate paths point at files on the receiver's host: operators set them, not practices.
TLS_FIELDS = ("tls_port", "tls_certificate", "tls_private_key", "tls_client_ca")


@admin.register(DicomNode)
class DicomNodeAdmin(PracticeScopedAdmin):
    practice_admin_can_add = True
    practice_admin_can_change = True
    list_display = ("ae_title", "practice", "tls_port", "notify_email")

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return () if request.user.is_superuser else TLS_FIELDS


@admin.register(DicomPeer)
class DicomPeerAdmin(PracticeScopedAdmin):
    practice_admin_can_add = True
    practice_admin_can_change = True
    list_display = ("name", "ae_title", "address", "port", "may_send", "practice")
    list_filter = ("practice", "may_send")


@admin.register(Arrival)
class ArrivalAdmin(PracticeScopedAdmin):
    list_display = ("received_at", "calling_ae", "address", "instances", "recovered", "practice")
    list_filter = ("practice",)


@admin.register(Transfer)
class TransferAdmin(PracticeScopedAdmin):
    list_display = ("created_at", "destination", "status", "sent", "failed", "total", "practice")
    list_filter = ("practice", "status")
