from __future__ import annotations

import uuid
from datetime import timedelta

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
        help_text="Chosen series (whole_study says whether the link is the whole study).",
    )
    attachments = models.ManyToManyField("portal.Attachment", blank=True, related_name="+")
    # Decided when the link is issued: a choice whose items were all deleted later (retention
    # shreds a report) is an empty choice, never the whole study.
    whole_study = models.BooleanField(
        default=True, help_text="The whole study; otherwise only the chosen series and files."
    )
    source_study = models.ForeignKey(
        "portal.Study",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deidentified_shares",
        help_text="Set on a link to a de-identified copy: the study it was made from. The "
        "link's study and patient are then the copy's.",
    )
    source_patient = models.ForeignKey(
        "portal.Patient",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deidentified_shares",
        help_text="The patient the de-identified copy was made from; its events name them.",
    )
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
    notify_recipient = models.BooleanField(
        default=False,
        help_text="Also email the recipient when the link is first opened and first downloaded.",
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
    def latest_expiry(self):  # noqa: ANN201 - a datetime
        """The latest expiry the practice allows: its maximum from when the link was issued."""
        return self.created_at + timedelta(days=self.practice.share_max_days)

    @property
    def deidentified(self) -> bool:
        """Whether the link serves a de-identified copy (PS3.15 Annex E) only."""
        return self.source_study_id is not None

    @property
    def shown_study(self):  # noqa: ANN201 - a Study
        """The study staff know this link by: the original of a de-identified copy."""
        return self.source_study if self.deidentified else self.study

    @property
    def shown_patient(self):  # noqa: ANN201 - a Patient
        return self.source_patient if self.deidentified else self.patient

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


class DownloadGrant(models.Model):
    """One counted download of a single file by one recipient session.

    A resume of that file by the same session within a short window rides on this count,
    for as many bytes as the file has: `bytes_granted` adds up what was sent or is being
    sent under it, so repeated `Range: bytes=1-` cannot fetch the file twice for one count.
    """

    share = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="+")
    object_code = models.UUIDField(help_text="The instance or attachment, by its id.")
    session_hash = models.CharField(max_length=64, help_text="SHA-256 of the session key.")
    bytes_granted = models.BigIntegerField(default=0)
    counted_at = models.DateTimeField()
    touched_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["share", "object_code", "session_hash"], name="one_grant_per_session_file"
            )
        ]

    def __str__(self) -> str:
        return f"download grant {self.pk}"


class DownloadPlan(models.Model):
    """What a download's ZIP holds, worked out once (sharing.plans); sealed in the vault."""

    key = models.CharField(max_length=200, unique=True, help_text="Format, scope and version.")
    scope = models.CharField(max_length=100, db_index=True)
    study = models.ForeignKey("portal.Study", on_delete=models.CASCADE, related_name="+")
    blob = models.OneToOneField("portal.StoredObject", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"download plan {self.scope}"


class SoftwareToken(models.Model):
    """A recipient's access token for their own software (DICOMweb), bound to one share.

    Only the SHA-256 of the token is kept; it opens nothing once the share ends, or once it
    expires or is revoked, whichever comes first.
    """

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    share = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="tokens")
    label = models.CharField(max_length=100, blank=True, help_text="e.g. 'Weasis on reception'.")
    token_hash = models.CharField(
        max_length=64, unique=True, help_text="SHA-256 of the token; the token is never stored."
    )
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    download_counted = models.BooleanField(
        default=False, help_text="Its first retrieval of originals counted as one download."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"software token {self.code}"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class UploadLink(models.Model):
    """A password-protected, expiring link through which a patient or another practice sends
    images in for one patient; what arrives waits for staff to accept it."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey("portal.Practice", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "portal.Patient", on_delete=models.PROTECT, related_name="upload_links"
    )
    sender_name = models.CharField(max_length=200, blank=True, help_text="Who is to send.")
    token_hash = models.CharField(
        max_length=64, unique=True, help_text="SHA-256 of the token; the token is never stored."
    )
    password_hash = models.CharField(max_length=200, help_text="Django password hash.")
    expires_at = models.DateTimeField()
    max_bytes = models.BigIntegerField(
        help_text="Most bytes the link takes in, all sends together."
    )
    received_bytes = models.BigIntegerField(default=0)
    failed_attempts = models.PositiveIntegerField(default=0)
    locked_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"upload link {self.code}"

    @property
    def room_left(self) -> int:
        """Bytes the link may still take (the sender's page checks a choice against it)."""
        return max(0, self.max_bytes - self.received_bytes)

    @property
    def status(self) -> str:
        if self.revoked_at:
            return ShareLink.Status.REVOKED
        if self.expires_at <= timezone.now():
            return ShareLink.Status.EXPIRED
        if self.locked_at:
            return ShareLink.Status.LOCKED
        return ShareLink.Status.ACTIVE


class ReceivedFile(models.Model):
    """One file sent through an upload link: checked and sealed, not yet part of the record."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for staff"
        ACCEPTED = "accepted", "Accepted into the record"
        DECLINED = "declined", "Declined by staff"
        REFUSED = "refused", "Refused on arrival"

    link = models.ForeignKey(UploadLink, on_delete=models.CASCADE, related_name="files")
    blob = models.OneToOneField(
        "portal.StoredObject", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=10, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    reason = models.CharField(max_length=200, blank=True)
    size = models.BigIntegerField(default=0)
    study_uid = models.CharField(max_length=64, blank=True)
    study_description = models.CharField(max_length=200, blank=True)
    study_date = models.DateField(null=True, blank=True)
    patient_name = models.CharField(max_length=200, blank=True, help_text="As the file names them.")
    patient_id = models.CharField(max_length=64, blank=True, help_text="As the file numbers them.")
    instance_uid = models.CharField(
        max_length=64, blank=True, help_text="A DICOM file's SOP Instance UID, kept or not."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["link", "state"])]

    # A copy of an image the practice holds already: nothing for staff to decide.
    ALREADY_HELD = "already in the practice's records"
    # The same file as one sent earlier through this link, in this send or another.
    ALREADY_SENT = "a copy of a file already sent through this link"

    def __str__(self) -> str:
        return f"received file {self.pk}"

    @property
    def counts_as_received(self) -> bool:
        """Whether the sender is told it arrived: every file that passed the checks, a copy of
        what the practice holds included (saying otherwise would tell a sender holding one
        patient's link what the practice holds of any patient)."""
        return self.state != self.State.REFUSED or self.reason in (
            self.ALREADY_HELD,
            self.ALREADY_SENT,
        )

    @property
    def told_to_sender(self) -> str:
        """What the sender's list says of it: received, or refused and why. Staff decisions
        are not told (a copy already held is never decided, so the two would differ)."""
        if self.counts_as_received:
            return "Received"
        return f"Refused on arrival: {self.reason}" if self.reason else "Refused on arrival"


class LinkRequest(models.Model):
    """A recipient of an expired or used-up link asking the practice for a new one.

    Staff issue the new link themselves; nothing is issued automatically.
    """

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    share = models.ForeignKey(ShareLink, on_delete=models.CASCADE, related_name="requests")
    reason = models.CharField(max_length=20, help_text="Why the old link no longer serves.")
    created_at = models.DateTimeField(db_index=True)
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"request for a new link {self.code}"
