from __future__ import annotations

import functools
import uuid
import zoneinfo
from importlib import resources

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


@functools.cache
def time_zone_names() -> tuple[str, ...]:
    """Return the IANA time zone names this machine knows, sorted."""
    return tuple(sorted(zoneinfo.available_timezones()))


@functools.cache
def common_time_zone_names() -> tuple[str, ...]:
    """Return the time zones a practice picks from: one per region (IANA's zone1970.tab),
    without the old aliases (Asia/Asmera, America/Atka) the full list repeats; UTC too."""
    try:
        table = resources.files("tzdata").joinpath("zoneinfo", "zone1970.tab").read_text()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return time_zone_names()
    names = {
        line.split("\t")[2].strip()
        for line in table.splitlines()
        if line and not line.startswith("#") and line.count("\t") >= 2
    }
    return tuple(sorted((names & set(time_zone_names())) | {"UTC"}))


def validate_time_zone(value: str) -> None:
    """Refuse a name that is not an IANA time zone (e.g. "Europe/Paris")."""
    if value not in time_zone_names():
        raise ValidationError("Choose a time zone from the list, like Europe/Paris.")


class DateOrder(models.TextChoices):
    """How the practice's patients write a date: the order of the birth date fields."""

    DMY = "dmy", "Day, month, year (17 May 1980)"
    MDY = "mdy", "Month, day, year (May 17, 1980)"
    YMD = "ymd", "Year, month, day (1980 May 17)"


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
        default=15,
        help_text="Staff are signed out after this much inactivity (at most 15 minutes).",
    )
    front_desk_views_images = models.BooleanField(
        default=False, help_text="Let front-desk staff open pixel data (minimum necessary)."
    )
    hygienists_see_assigned_only = models.BooleanField(
        default=False, help_text="Hygienists see only patients assigned to them."
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="Times on patients' and staff pages are shown in this zone.",
    )
    date_order = models.CharField(
        max_length=3,
        choices=DateOrder.choices,
        default=DateOrder.DMY,
        help_text="The order of the day, month and year fields a patient fills in.",
    )
    notify_link_activity = models.BooleanField(
        default=True,
        help_text="Email whoever issued a link when it is first opened and first downloaded "
        "(no patient details in the email).",
    )
    deid_clean_pixels = models.BooleanField(
        default=True,
        help_text="De-identified copies leave out images that declare burned-in annotation.",
    )
    deid_dates = models.CharField(
        max_length=8,
        choices=[
            ("remove", "Remove dates"),
            ("shift", "Shift dates (keep intervals)"),
            ("keep", "Keep dates"),
        ],
        default="remove",
        help_text="Dates in de-identified copies (PS3.15 Annex E options).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The practice's time zone (UTC if its name is unknown on this machine)."""
        try:
            return zoneinfo.ZoneInfo(self.time_zone or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo("UTC")

    def clean(self) -> None:
        """The same limits wherever the practice is edited (workspace settings, back office)."""
        errors = {}
        if not 1 <= (self.share_max_days or 0) <= 365:
            errors["share_max_days"] = "Choose between 1 and 365 days."
        longest = settings.STAFF_IDLE_TIMEOUT_MINUTES
        if not 1 <= (self.idle_timeout_minutes or 0) <= longest:
            errors["idle_timeout_minutes"] = f"Choose between 1 and {longest} minutes."
        if (self.share_default_days or 0) < 1:
            errors["share_default_days"] = "Choose at least 1 day."
        elif not errors and self.share_default_days > self.share_max_days:
            errors["share_default_days"] = "The default expiry cannot be longer than the maximum."
        if errors:
            raise ValidationError(errors)


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
