from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from portal.models.practices import Practice
from portal.models.storage import StoredObject


class UploadBatch(models.Model):
    """The files of one drop, ingested together once every byte of every file arrived."""

    class State(models.TextChoices):
        OPEN = "open", "Receiving"
        PROCESSING = "processing", "Reading the images"
        DONE = "done", "Ingested"
        FAILED = "failed", "Failed"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    patient = models.ForeignKey(
        "portal.Patient", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    report = models.JSONField(
        null=True, blank=True, help_text="Per-file outcome; file names and statuses only."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"upload batch {self.code}"


class UploadSession(models.Model):
    """One file arriving by the tus protocol; its bytes are staged encrypted as chunks."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    batch = models.ForeignKey(
        UploadBatch, null=True, blank=True, on_delete=models.CASCADE, related_name="uploads"
    )
    relative_name = models.CharField(max_length=500, help_text="Path inside the dropped folder.")
    length = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    ingested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"upload {self.code}"

    @property
    def is_complete(self) -> bool:
        return self.offset >= self.length


class UploadChunk(models.Model):
    """One PATCH worth of bytes, encrypted in the vault, at its offset in the file."""

    upload = models.ForeignKey(UploadSession, on_delete=models.CASCADE, related_name="chunks")
    offset = models.BigIntegerField()
    size = models.BigIntegerField()
    blob = models.OneToOneField(StoredObject, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["offset"]
        constraints = [
            models.UniqueConstraint(fields=["upload", "offset"], name="uniq_chunk_offset")
        ]

    def __str__(self) -> str:
        return f"chunk {self.offset}+{self.size}"
