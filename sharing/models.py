from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class ShareLink(models.Model):
    """A password-protected, expiring link to a study (or some of its series and attachments)."""

    class Recipient(models.TextChoices):
        PATIENT = "patient", "Patient"
        REFERRER = "referrer", "Referring clinician"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"
        LOCKED = "locked", "Locked"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey("portal.Practice", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey("portal.Patient", on_delete=models.PROTECT, related_name="shares")
    study = models.ForeignKey("portal.Study", on_delete=models.PROTECT, related_name="shares")
    series = models.ManyToManyField(
        "portal.Series",
        blank=True,
        related_name="+",
        help_text="Chosen series; empty with no attachments chosen means the whole study.",
    )
    attachments = models.ManyToManyField("portal.Attachment", blank=True, related_name="+")
    recipient_kind = models.CharField(max_length=10, choices=Recipient.choices)
    recipient_email = models.EmailField(blank=True)
    recipient_name = models.CharField(max_length=200, blank=True)
    token_hash = models.CharField(
        max_length=64, unique=True, help_text="SHA-256 of the token; the token is never stored."
    )
    password_hash = models.CharField(max_length=200, help_text="Django password hash.")
    expires_at = models.DateTimeField()
    allow_download = models.BooleanField(default=True)
    max_downloads = models.PositiveIntegerField(null=True, blank=True)
    download_count = models.PositiveIntegerField(default=0)
    open_count = models.PositiveIntegerField(default=0)
    failed_attempts = models.PositiveIntegerField(default=0)
    last_access_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["practice", "created_at"])]

    def __str__(self) -> str:
        return f"share {self.code}"

    @property
    def status(self) -> str:
        if self.revoked_at:
            return self.Status.REVOKED
        if self.expires_at <= timezone.now():
            return self.Status.EXPIRED
        if self.locked_at:
            return self.Status.LOCKED
        return self.Status.ACTIVE

    @property
    def is_whole_study(self) -> bool:
        return not self.series.exists() and not self.attachments.exists()

    @property
    def downloads_left(self) -> int | None:
        if self.max_downloads is None:
            return None
        return max(0, self.max_downloads - self.download_count)


class VerificationFailure(models.Model):
    """One failed recipient verification, kept so throttles survive a cache outage."""

    address = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    share = models.ForeignKey(ShareLink, null=True, blank=True, on_delete=models.CASCADE)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["address", "created_at"])]

    def __str__(self) -> str:
        return f"failure {self.created_at:%Y-%m-%d %H:%M:%S}"


class ShareCode(models.Model):
    """A one-time sign-in code emailed to a referrer; only its keyed hash is kept."""

    share = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64, help_text="HMAC of the code; never the code.")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"code for {self.share}"
