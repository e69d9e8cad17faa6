from __future__ import annotations

import uuid

from django.db import models


class StoredObject(models.Model):
    """One encrypted object in the vault: where it is and the wrapped key that opens it.

    Destroying wrapped_key (crypto-shredding) makes the object unreadable for good.
    """

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    storage_name = models.CharField(max_length=200, unique=True)
    key_id = models.CharField(max_length=64, help_text="Key-encryption key that wraps the DEK.")
    wrapped_key = models.BinaryField(
        null=True, help_text="Data key wrapped by the KEK; null once shredded."
    )
    plain_size = models.BigIntegerField()
    segment_size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the plaintext.")
    crc32 = models.BigIntegerField(help_text="CRC-32 of the plaintext, for ZIP downloads.")
    created_at = models.DateTimeField(auto_now_add=True)
    shredded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["key_id"])]

    def __str__(self) -> str:
        return f"object {self.code}"
