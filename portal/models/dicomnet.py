"""The practice's DICOM network: its receiver's AE title, known devices, arrivals, transfers."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from portal.models.imaging import Instance, Study
from portal.models.practices import Practice
from portal.models.storage import StoredObject

# PS3.5 AE: up to 16 characters of the default repertoire, no backslash or control characters.
ae_title_validator = RegexValidator(
    r"^[ -\[\]-~]{1,16}$", "An AE title is 1 to 16 printable ASCII characters, no backslash."
)


class DicomNode(models.Model):
    """How the practice's devices reach the receiver: its AE title, optional TLS, who to tell."""

    practice = models.OneToOneField(Practice, on_delete=models.CASCADE, related_name="dicom_node")
    ae_title = models.CharField(
        max_length=16,
        unique=True,
        validators=[ae_title_validator],
        help_text="The called AE title devices send to; it picks this practice.",
    )
    tls_port = models.PositiveIntegerField(
        null=True, blank=True, help_text="Port of this practice's DICOM TLS listener, if any."
    )
    tls_certificate = models.CharField(
        max_length=500, blank=True, help_text="Path of the practice's PEM certificate chain."
    )
    tls_private_key = models.CharField(
        max_length=500, blank=True, help_text="Path of the PEM private key (kept off the DB)."
    )
    tls_client_ca = models.CharField(
        max_length=500,
        blank=True,
        help_text="Path of PEM CA certificates; when set, senders must present a certificate.",
    )
    notify_email = models.EmailField(
        blank=True, help_text="Front desk address told (without patient data) of arrivals."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "DICOM receiver"

    def __str__(self) -> str:
        return f"{self.ae_title} ({self.practice})"


class DicomPeer(models.Model):
    """A device of the practice's network: a sender allowed in, a destination, or both."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="dicom_peers")
    name = models.CharField(max_length=100, help_text="What staff call it, e.g. 'CBCT unit'.")
    ae_title = models.CharField(max_length=16, validators=[ae_title_validator])
    address = models.GenericIPAddressField(
        null=True, blank=True, help_text="Its IP address; blank lets the AE title in from any."
    )
    port = models.PositiveIntegerField(
        null=True, blank=True, help_text="Its DICOM port: set to offer it as a destination."
    )
    may_send = models.BooleanField(default=True, help_text="Accept studies it sends.")
    use_tls = models.BooleanField(default=False, help_text="Send to it over DICOM TLS.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "DICOM device"
        indexes = [models.Index(fields=["practice", "ae_title"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.ae_title})"

    @property
    def is_destination(self) -> bool:
        return self.port is not None and bool(self.address)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from portal.dicomnet.destinations import refusal

        if self.is_destination and (why := refusal(self.address)):
            raise ValidationError({"address": why})


class Arrival(models.Model):
    """Instances of a study received over DICOM in one association: where they came from."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="arrivals")
    peer = models.ForeignKey(
        DicomPeer, null=True, blank=True, on_delete=models.SET_NULL, related_name="arrivals"
    )
    calling_ae = models.CharField(max_length=16)
    address = models.GenericIPAddressField(null=True, blank=True)
    instances = models.PositiveIntegerField(default=0)
    recovered = models.BooleanField(
        default=False, help_text="Filed after the receiver was interrupted mid-association."
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["practice", "received_at"])]

    def __str__(self) -> str:
        return f"arrival {self.code}"

    @property
    def device(self) -> str:
        return self.peer.name if self.peer is not None else self.calling_ae


class Transfer(models.Model):
    """A study sent onward by C-STORE to a destination, with a result per instance."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting to start"
        SENDING = "sending", "Sending"
        DONE = "done", "Sent"
        PARTIAL = "partial", "Sent with failures"
        FAILED = "failed", "Failed"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="transfers")
    destination = models.ForeignKey(DicomPeer, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"transfer {self.code}"


class TransferItem(models.Model):
    """What the destination answered for one instance."""

    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="items")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    status = models.PositiveIntegerField(help_text="DICOM status the destination returned.")
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"item {self.pk}"


class Receipt(models.Model):
    """An instance the receiver answered success for, on record before its records are filed.

    Committed (with its stored object, which holds the wrapped key) before the sender hears
    success; deleted in the transaction that files the instance at the association's end.
    One left behind belongs to a receiver that stopped mid-association: it is filed when a
    receiver starts or by the periodic task (portal.dicomnet.recovery).
    """

    stored_object = models.OneToOneField(
        StoredObject, on_delete=models.CASCADE, related_name="receipt"
    )
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    peer = models.ForeignKey(
        DicomPeer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    calling_ae = models.CharField(max_length=16)
    address = models.GenericIPAddressField(null=True, blank=True)
    association = models.UUIDField(help_text="The association that brought it.")
    process = models.CharField(
        max_length=200, blank=True, help_text="host:pid:token of the receiver that took it."
    )
    name = models.CharField(max_length=255, help_text="Its name in the ingest report.")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["received_at"]),
            models.Index(fields=["association"]),
        ]

    def __str__(self) -> str:
        return f"receipt {self.pk}"
