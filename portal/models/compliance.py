from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from portal.models.practices import Practice
from portal.models.storage import StoredObject


class BusinessAssociateAgreement(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="baas")
    associate = models.CharField(max_length=200, help_text="The business associate's legal name.")
    services = models.TextField(blank=True, help_text="What the associate does with PHI.")
    signed_on = models.DateField()
    expires_on = models.DateField(null=True, blank=True)
    document = models.ForeignKey(
        StoredObject,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The signed agreement, encrypted in the vault.",
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["expires_on"]
        verbose_name = "business associate agreement"

    def __str__(self) -> str:
        return f"BAA with {self.associate}"

    @property
    def is_expired(self) -> bool:
        return self.expires_on is not None and self.expires_on < timezone.localdate()


class RetentionPolicy(models.Model):
    """How long a practice keeps imaging of one kind before it is crypto-shredded."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="retention")
    name = models.CharField(max_length=100)
    modality = models.CharField(max_length=16, blank=True, help_text="Blank applies to all.")
    minors_until_age = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="For minors, keep at least until the patient reaches this age.",
    )
    retain_years = models.PositiveSmallIntegerField(
        help_text="Years after the study date before deletion."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["practice", "name"]
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"{self.name}: {self.retain_years} years"
