from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Practice(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    address = models.TextField(blank=True)
    share_default_days = models.PositiveSmallIntegerField(
        default=14, help_text="Expiry of a new share link unless staff choose otherwise."
    )
    share_max_days = models.PositiveSmallIntegerField(
        default=30, help_text="No share link may live longer than this."
    )
    idle_timeout_minutes = models.PositiveSmallIntegerField(
        default=15, help_text="Staff are signed out after this much inactivity."
    )
    front_desk_views_images = models.BooleanField(
        default=False, help_text="Let front-desk staff open pixel data (minimum necessary)."
    )
    hygienists_see_assigned_only = models.BooleanField(
        default=False, help_text="Hygienists see only patients assigned to them."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Practice admin"
    CLINICIAN = "clinician", "Clinician"
    HYGIENIST = "hygienist", "Hygienist"
    FRONT_DESK = "front_desk", "Front desk"


class StaffMember(models.Model):
    """A user's membership of one practice, with the role that decides what they may see."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staffmember"
    )
    practice = models.ForeignKey(Practice, on_delete=models.PROTECT, related_name="staff")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["practice", "user__username"]

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.get_role_display()}, {self.practice})"
