"""Legal holds, purges (retention and erasure), disclosures outside the portal, alerts."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from portal.models.imaging import Attachment, Patient, Study
from portal.models.practices import Practice

USER = settings.AUTH_USER_MODEL


class LegalHold(models.Model):
    """Keeps a patient's records (or one study) from any purge while it is in force."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="legal_holds")
    study = models.ForeignKey(
        Study, null=True, blank=True, on_delete=models.PROTECT, related_name="legal_holds",
        help_text="Blank holds every record of the patient.",
    )  # fmt: skip
    # The study's code, kept when a study whose hold was released is later shredded.
    study_code = models.UUIDField(null=True, blank=True, editable=False)
    reason = models.CharField(max_length=300, help_text="e.g. litigation, investigation.")
    set_by = models.ForeignKey(USER, null=True, on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-set_at"]

    def __str__(self) -> str:
        return f"legal hold {self.code}"

    def save(self, *args, **kwargs) -> None:
        if self.study_id and self.study_code is None:
            self.study_code = self.study.code
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.study_id and self.patient_id and self.study.patient_id != self.patient_id:
            raise ValidationError({"study": "This is not a study of this patient."})


class Purge(models.Model):
    """One record due for crypto-shredding: by retention, or a patient's erasure request.

    It names records by id only; once done it is the PHI-free trace of what was destroyed.
    """

    class Kind(models.TextChoices):
        RETENTION = "retention", "Retention schedule"
        ERASURE = "erasure", "Patient's erasure request"

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting approval"
        APPROVED = "approved", "Approved, shredded by the daily task"
        HELD = "held", "Kept: legal hold"
        CANCELLED = "cancelled", "Cancelled"
        DONE = "done", "Shredded"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    study = models.ForeignKey(
        Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attachment = models.ForeignKey(
        Attachment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    record_code = models.UUIDField(null=True, blank=True, help_text="The record, by its id.")
    rule = models.CharField(max_length=200, blank=True, help_text="The schedule that applied.")
    due_on = models.DateField()
    reason = models.CharField(
        max_length=300, blank=True, help_text="Why (erasure); no patient details here."
    )
    requested_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    objects_shredded = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["status", "due_on"]
        verbose_name = "record due for deletion"
        verbose_name_plural = "records due for deletion"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.code}"


class Disclosure(models.Model):
    """A disclosure made outside the portal (paper, CD, fax), for the accounting of them."""

    class Medium(models.TextChoices):
        PAPER = "paper", "Paper copy"
        CD = "cd", "CD or USB drive"
        FAX = "fax", "Fax"
        EMAIL = "email", "Email"
        VERBAL = "verbal", "Verbal"
        OTHER = "other", "Other"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="disclosures")
    disclosed_on = models.DateField()
    recipient = models.CharField(max_length=200, help_text="Who received it.")
    recipient_address = models.CharField(max_length=300, blank=True, help_text="If known.")
    what = models.CharField(max_length=300, help_text="What was disclosed.")
    purpose = models.CharField(max_length=300, help_text="Why, in a sentence.")
    medium = models.CharField(max_length=10, choices=Medium.choices)
    recorded_by = models.ForeignKey(USER, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-disclosed_on"]
        verbose_name = "disclosure outside the portal"
        verbose_name_plural = "disclosures outside the portal"

    def __str__(self) -> str:
        return f"disclosure {self.code}"


class Alert(models.Model):
    """An abnormal pattern in the access history, for the practice's admins to look at."""

    class Kind(models.TextChoices):
        LINK_LOCKED = "link_locked", "Link locked by failed attempts"
        DOWNLOADS = "downloads", "Many downloads of one link in an hour"
        ADDRESSES = "addresses", "One link used from many addresses"
        PATIENTS = "patients", "A staff member opened many patients in a day"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    share_code = models.UUIDField(null=True, blank=True, help_text="The link, by its id.")
    user = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    count = models.PositiveIntegerField(default=0, help_text="What was counted.")
    threshold = models.PositiveIntegerField(default=0)
    key = models.CharField(max_length=120, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True, help_text="What was found and done.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.get_kind_display()


class AlertScan(models.Model):
    """How far the alert scan has read the access history."""

    last_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"scanned to #{self.last_seq}"
