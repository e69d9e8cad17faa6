from __future__ import annotations

import unicodedata
import uuid

from django.conf import settings
from django.db import models

from portal.models.practices import Practice
from portal.models.storage import StoredObject


def fold(text: str) -> str:
    """Return text lowercased without accents, for case- and accent-insensitive search."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class Patient(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="patients")
    patient_id = models.CharField(max_length=64, help_text="Record number (DICOM PatientID).")
    name = models.CharField(max_length=200, help_text="Display name, e.g. 'Jane Doe'.")
    name_folded = models.CharField(max_length=200, editable=False, db_index=True)
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=1, blank=True)
    email = models.EmailField(blank=True)
    last_visit = models.DateField(null=True, blank=True)
    deidentified_copy = models.BooleanField(
        default=False,
        editable=False,
        help_text="Holds the de-identified copy made for a share; names no one, never listed "
        "to staff.",
    )
    assigned_staff = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="assigned_patients"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name_folded"]
        constraints = [
            models.UniqueConstraint(fields=["practice", "patient_id"], name="uniq_patient_id")
        ]
        indexes = [
            models.Index(fields=["practice", "name_folded"]),
            models.Index(fields=["practice", "birth_date"]),
            models.Index(fields=["practice", "patient_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.patient_id})"

    def save(self, *args, **kwargs) -> None:
        self.name_folded = fold(self.name)
        if (
            "update_fields" in kwargs
            and kwargs["update_fields"]
            and "name" in kwargs["update_fields"]
        ):
            kwargs["update_fields"] = {*kwargs["update_fields"], "name_folded"}
        super().save(*args, **kwargs)


class Study(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="studies")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    study_uid = models.CharField(max_length=64)
    study_date = models.DateField(null=True, blank=True)
    study_time = models.CharField(max_length=16, blank=True)
    description = models.CharField(max_length=200, blank=True)
    accession_number = models.CharField(max_length=32, blank=True)
    study_id = models.CharField(max_length=32, blank=True)
    referring_physician = models.CharField(max_length=200, blank=True)
    modalities = models.CharField(max_length=64, blank=True, help_text="e.g. 'CT' or 'CT\\SR'")
    legal_hold = models.BooleanField(
        default=False, help_text="Never crypto-shredded by retention while set."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-study_date", "-created_at"]
        verbose_name_plural = "studies"
        constraints = [
            models.UniqueConstraint(fields=["practice", "study_uid"], name="uniq_study_uid")
        ]
        indexes = [
            models.Index(fields=["practice", "study_date"]),
            models.Index(fields=["practice", "modalities"]),
        ]

    def __str__(self) -> str:
        return f"{self.description or 'Study'} {self.study_date or ''}".strip()


class Series(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=16, blank=True, db_index=True)
    number = models.IntegerField(null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)
    body_part = models.CharField(max_length=64, blank=True)
    thumbnail = models.ForeignKey(
        StoredObject, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decode_error = models.CharField(
        max_length=200, blank=True, help_text="Why the pixels cannot be shown, if they cannot."
    )
    volume = models.ForeignKey(
        StoredObject,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The decoded voxels, sealed like the originals, so reformats start fast.",
    )
    volume_key = models.CharField(
        max_length=64, blank=True, help_text="What the stored volume was made from."
    )
    opening_slice = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="A dental CBCT's occlusal plane, found when the volume is stored; the viewer "
        "opens a few mm below it, through the lower crowns. Empty opens on the middle slice.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number", "created_at"]
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(fields=["study", "series_uid"], name="uniq_series_uid")
        ]

    def __str__(self) -> str:
        return f"{self.modality} {self.description or 'series'} #{self.number or ''}".strip()


class Instance(models.Model):
    """One stored DICOM file, with what search and the viewer need from its header."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64)
    transfer_syntax_uid = models.CharField(max_length=64)
    instance_number = models.IntegerField(null=True, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    frames = models.PositiveIntegerField(default=1)
    samples_per_pixel = models.PositiveSmallIntegerField(default=1)
    photometric = models.CharField(max_length=16, blank=True)
    bits_allocated = models.PositiveSmallIntegerField(null=True, blank=True)
    pixel_representation = models.PositiveSmallIntegerField(null=True, blank=True)
    rescale_slope = models.FloatField(default=1.0)
    rescale_intercept = models.FloatField(default=0.0)
    window_center = models.FloatField(null=True, blank=True)
    window_width = models.FloatField(null=True, blank=True)
    pixel_spacing = models.JSONField(null=True, blank=True, help_text="[row, column] in mm")
    slice_thickness = models.FloatField(null=True, blank=True)
    image_position = models.JSONField(null=True, blank=True)
    image_orientation = models.JSONField(null=True, blank=True)
    slice_location = models.FloatField(null=True, blank=True)
    content_date = models.DateField(null=True, blank=True)
    frame_positions = models.JSONField(
        null=True, blank=True, help_text="Per-frame Image Position (Patient) of a multi-frame"
    )
    frame_rescale = models.JSONField(
        null=True, blank=True, help_text="Per-frame [slope, intercept] when frames differ"
    )
    overlays = models.PositiveSmallIntegerField(default=0, help_text="Overlay planes (60xx)")
    presentation_lut = models.CharField(
        max_length=16, blank=True, help_text="Presentation LUT Shape (IDENTITY or INVERSE)"
    )
    voi_lut = models.BooleanField(default=False, help_text="Carries a VOI LUT Sequence")
    original_name = models.CharField(max_length=255, blank=True)
    blob = models.OneToOneField(StoredObject, on_delete=models.PROTECT, related_name="instance")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instance_number", "slice_location", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "sop_instance_uid"], name="uniq_sop_instance_uid"
            )
        ]

    def __str__(self) -> str:
        return f"instance {self.instance_number or ''} {self.code}".strip()


class Attachment(models.Model):
    class Kind(models.TextChoices):
        PHOTO = "photo", "Photo"
        PDF = "pdf", "PDF report"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="attachments")
    study = models.ForeignKey(
        Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="attachments"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    content_type = models.CharField(max_length=64)
    title = models.CharField(max_length=200, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    blob = models.OneToOneField(StoredObject, on_delete=models.PROTECT, related_name="attachment")
    thumbnail = models.ForeignKey(
        StoredObject, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["practice", "patient"])]

    def __str__(self) -> str:
        return self.title or self.get_kind_display()
