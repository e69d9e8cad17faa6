"""Compliance records a practice keeps: BAAs, retention schedules and its alert thresholds."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from portal.models.practices import Practice
from portal.models.storage import StoredObject

BAA_ENDING_DAYS = 60


class BusinessAssociateAgreement(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDING = "ending", f"Ending within {BAA_ENDING_DAYS} days"
        ENDED = "ended", "Ended"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="baas")
    associate = models.CharField(
        "vendor", max_length=200, help_text="The business associate's legal name."
    )
    services = models.TextField(blank=True, help_text="What the associate does with PHI.")
    signed_on = models.DateField()
    effective_on = models.DateField(null=True, blank=True, help_text="Blank: from signature.")
    expires_on = models.DateField(
        "end date", null=True, blank=True, help_text="Blank: no end date."
    )
    auto_renews = models.BooleanField(
        default=False, help_text="Renews by itself at the end date unless cancelled."
    )
    document = models.ForeignKey(
        StoredObject,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The signed agreement, encrypted in the vault.",
    )
    document_name = models.CharField(max_length=200, blank=True, editable=False)
    notes = models.TextField(blank=True)
    notified_status = models.CharField(
        max_length=10, blank=True, editable=False, help_text="Last status the admins were told."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["expires_on"]
        verbose_name = "business associate agreement"

    def __str__(self) -> str:
        return f"BAA with {self.associate}"

    def status_on(self, today: date) -> str:
        """Return the agreement's status on a day (an auto-renewing one never ends by date)."""
        if self.expires_on is None or self.auto_renews:
            return self.Status.ACTIVE
        if self.expires_on < today:
            return self.Status.ENDED
        if self.expires_on <= today + timedelta(days=BAA_ENDING_DAYS):
            return self.Status.ENDING
        return self.Status.ACTIVE

    @property
    def status(self) -> str:
        return self.status_on(timezone.localdate())

    @property
    def is_expired(self) -> bool:
        return self.status == self.Status.ENDED


class BaaDocument(models.Model):
    """One signed document a BAA has had on file: a replaced one stays, as an earlier version.

    The agreement's `document` is the newest; an auditor may ask for the one in force on
    any earlier day.
    """

    baa = models.ForeignKey(
        BusinessAssociateAgreement, on_delete=models.CASCADE, related_name="documents"
    )
    stored = models.ForeignKey(StoredObject, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200)
    uploaded_at = models.DateTimeField(default=timezone.now)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-uploaded_at", "-pk"]
        verbose_name = "BAA document"

    def __str__(self) -> str:
        return self.name


class RetentionPolicy(models.Model):
    """How long a practice keeps one kind of record before it is crypto-shredded."""

    class Kind(models.TextChoices):
        IMAGING = "imaging", "Imaging studies (with their photos and PDFs)"
        DOCUMENTS = "documents", "Photos and documents outside a study"

    class CountFrom(models.TextChoices):
        RECORD_DATE = "record_date", "The study's date (or the document's upload)"
        LAST_VISIT = "last_visit", "The patient's last visit"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="retention")
    name = models.CharField(max_length=100)
    record_kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.IMAGING)
    modality = models.CharField(
        max_length=16, blank=True, help_text="Imaging only: blank applies to all modalities."
    )
    count_from = models.CharField(
        max_length=12, choices=CountFrom.choices, default=CountFrom.RECORD_DATE
    )
    retain_years = models.PositiveSmallIntegerField(
        # Zero with automatic purging would shred every record at the next daily run.
        validators=[MinValueValidator(1)],
        help_text="Years after the date counted from before deletion.",
    )
    majority_age = models.PositiveSmallIntegerField(
        default=18, help_text="Age of majority where the practice is (18 in most US states)."
    )
    years_after_majority = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="For a minor at the time of the record: keep at least until majority + this.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["practice", "name"]
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"{self.name}: {self.retain_years} years"


class ComplianceSettings(models.Model):
    """A practice's choices for purging and for alerts (defaults documented in docs/hipaa.md)."""

    practice = models.OneToOneField(Practice, on_delete=models.CASCADE, related_name="compliance")
    auto_purge = models.BooleanField(
        default=False,
        help_text="Shred records due for deletion without an admin approving each batch.",
    )
    downloads_per_hour = models.PositiveIntegerField(
        default=10, help_text="Alert when one link is downloaded more often than this in an hour."
    )
    addresses_per_link = models.PositiveIntegerField(
        default=5, help_text="Alert when one link is used from more addresses than this."
    )
    patients_per_day = models.PositiveIntegerField(
        default=60, help_text="Alert when a staff member opens more patients than this in a day."
    )

    class Meta:
        verbose_name = "compliance settings"
        verbose_name_plural = "compliance settings"

    def __str__(self) -> str:
        return f"Compliance settings of {self.practice}"

    @classmethod
    def of(cls, practice: Practice) -> ComplianceSettings:
        return cls.objects.get_or_create(practice=practice)[0]
