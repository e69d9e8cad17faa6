from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from portal.models.practices import Practice
from portal.models.storage import StoredObject


class PendingFile(models.Model):
    """A stored file that names no patient, waiting for staff to choose one.

    A DICOM file without Patient ID, or a photo or PDF whose batch did not decide a patient,
    is kept encrypted like any other file; staff resolve it in the workspace.
    """

    class Kind(models.TextChoices):
        DICOM = "dicom", "DICOM"
        PHOTO = "photo", "Photo"
        PDF = "pdf", "PDF report"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    content_type = models.CharField(max_length=64, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=200, help_text="Why no patient was chosen.")
    blob = models.OneToOneField(StoredObject, on_delete=models.PROTECT, related_name="pending")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["practice", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} waiting for a patient"
