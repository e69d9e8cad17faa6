from __future__ import annotations

from django.db import models


class SignInEvent(models.Model):
    """A failed staff sign-in, or an unlock email sent or used; the sign-in throttle's record.

    Kept in the database so the throttle holds when the cache is down.
    """

    class Kind(models.TextChoices):
        FAILURE = "failure", "Failed password"
        UNLOCK_MAIL = "unlock_mail", "Unlock email sent"
        UNLOCK_USED = "unlock_used", "Unlock link used"

    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.FAILURE)
    username = models.CharField(max_length=150, help_text="As typed, in lower case.")
    address = models.GenericIPAddressField(null=True, blank=True)
    device = models.CharField(
        max_length=64, blank=True, help_text="The trusted browser it came from, if any."
    )
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["username", "created_at"]),
            models.Index(fields=["address", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.created_at:%Y-%m-%d %H:%M:%S}"
