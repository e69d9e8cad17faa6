from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Action(models.TextChoices):
    INGEST = "ingest", "Ingest"
    VIEW_STUDY = "view_study", "View study"
    VIEW_SERIES = "view_series", "View series"
    VIEW_ATTACHMENT = "view_attachment", "View attachment"
    DOWNLOAD = "download", "Download"
    SEARCH = "search", "Search"
    SHARE_ISSUE = "share_issue", "Share issued"
    SHARE_OPEN = "share_open", "Share link opened"
    SHARE_VERIFY = "share_verify", "Share verification"
    SHARE_REVOKE = "share_revoke", "Share revoked"
    SHARE_UNLOCK = "share_unlock", "Share unlocked"
    SHARE_EXTEND = "share_extend", "Share extended"
    SHARE_EMAIL = "share_email", "Share emailed"
    SHARE_LOCK = "share_lock", "Share locked"
    SHARE_REQUEST = "share_request", "New link requested"
    SIGN_IN = "sign_in", "Sign-in"
    SIGN_OUT = "sign_out", "Sign-out"
    ACCESS_DENIED = "access_denied", "Access denied"
    KEY_ROTATION = "key_rotation", "Key rotation"
    SHRED = "shred", "Crypto-shred"
    UPLOAD = "upload", "Upload"
    ADMIN_VIEW = "admin_view", "Viewed in the back office"
    STAFF_CHANGE = "staff_change", "Staff account changed"
    PATIENT_CHANGE = "patient_change", "Patient record changed"
    EXPORT = "export", "Exported from the back office"
    DICOM_SEND = "dicom_send", "Sent onward over DICOM"
    SOFTWARE_TOKEN = "software_token", "Access token for a recipient's software"
    LEGAL_HOLD = "legal_hold", "Legal hold set or released"
    PURGE = "purge", "Deletion requested, approved or cancelled"


class Outcome(models.TextChoices):
    OK = "ok", "OK"
    DENIED = "denied", "Denied"
    FAILED = "failed", "Failed"


class AccessEvent(models.Model):
    """One append-only entry of the access history, chained to the previous by hash.

    Only audit.record() writes these. Tokens, passwords and codes are never stored here.
    """

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    seq = models.BigIntegerField(unique=True, help_text="Position in the chain, from 1.")
    created_at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.OK)
    # No foreign key constraints in the database: a constraint check at each commit would
    # lock the practice, patient and user rows the event names (and slow every append);
    # the rows are never deleted (on_delete=PROTECT, and retention scrubs a patient instead).
    # Practice and patient are found through the (…, created_at) indexes below.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
    )
    share_code = models.UUIDField(null=True, blank=True, help_text="The share link, by its id.")
    practice = models.ForeignKey(
        "portal.Practice",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    patient = models.ForeignKey(
        "portal.Patient",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    object_type = models.CharField(max_length=32, blank=True)
    object_code = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    # Not indexed: verification walks the chain by seq, and nothing looks an event up by hash.
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["patient", "created_at"]),
            models.Index(fields=["practice", "created_at"]),
            models.Index(fields=["share_code"]),
            models.Index(fields=["action", "outcome"]),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.outcome}"


class ChainHead(models.Model):
    """The single row locked while appending, so the hash chain stays linear.

    It names the chain's length and last hash, bound by an HMAC with the chain key, and moves
    in the same transaction as each insert: removing the newest events cannot go unnoticed.
    """

    last_hash = models.CharField(max_length=64)
    seq = models.BigIntegerField(default=0, help_text="Events in the chain.")
    mac = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return self.last_hash
