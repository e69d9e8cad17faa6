"""Issue, find, verify and revoke upload links."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import constant_time_compare

import audit
from audit.models import Action, Outcome
from portal.textchecks import refuse_control_characters
from sharing.models import UploadLink
from sharing.services import generate_password, hash_token, link_days

LINK_LIMIT = 5  # failed verifications before the link locks, as for share links


@dataclass
class IssuedUpload:
    """What staff see once: the link's address and its password."""

    link: UploadLink
    token: str
    password: str

    @property
    def path(self) -> str:
        return f"/u/{self.token}"


def issue_upload_link(
    *,
    patient,
    created_by,
    sender_name: str = "",
    expires_in_days: int | None = None,
    password: str | None = None,
    max_bytes: int | None = None,
    request=None,
) -> IssuedUpload:
    """Create an upload link for a patient and return its one-time token and password."""
    practice = patient.practice
    days = link_days(practice, expires_in_days)
    refuse_control_characters(sender_name)
    if patient.birth_date is None:
        raise ValidationError("An upload link needs the patient's date of birth on file.")
    password = password or generate_password()
    if len(password) < 8:
        raise ValidationError("The link password must be at least 8 characters.")
    limit = max_bytes or settings.PORTAL_UPLOAD_LINK_MAX_BYTES
    token = secrets.token_urlsafe(32)
    link = UploadLink.objects.create(
        practice=practice,
        patient=patient,
        sender_name=sender_name[:200],
        token_hash=hash_token(token),
        password_hash=make_password(password),
        expires_at=timezone.now() + timedelta(days=days),
        max_bytes=min(limit, settings.PORTAL_UPLOAD_LINK_MAX_BYTES),
        created_by=created_by,
    )
    record(Action.SHARE_ISSUE, link, request, user=created_by, days=days)
    return IssuedUpload(link=link, token=token, password=password)


def find_upload_link(token: str) -> UploadLink | None:
    if not token or len(token) > 100:
        return None
    qs = UploadLink.objects.select_related("practice", "patient")
    return qs.filter(token_hash=hash_token(token)).first()


def check_answers(link: UploadLink, password: str, birth_date: str) -> bool:
    """Check the password and the patient's birth date; both always evaluated."""
    password_ok = check_password(password, link.password_hash)
    try:
        given = date.fromisoformat((birth_date or "").strip()).isoformat()
    except ValueError:
        given = ""
    expected = link.patient.birth_date.isoformat() if link.patient.birth_date else "-"
    return password_ok & constant_time_compare(given, expected)


def record_link_failure(link: UploadLink, request=None) -> bool:
    """Count a failed verification; return True if it locked the link."""
    UploadLink.objects.filter(pk=link.pk).update(failed_attempts=F("failed_attempts") + 1)
    locked = UploadLink.objects.filter(
        pk=link.pk, locked_at__isnull=True, failed_attempts__gte=LINK_LIMIT
    ).update(locked_at=timezone.now())
    link.refresh_from_db(fields=["failed_attempts", "locked_at"])
    if locked:
        record(
            Action.SHARE_LOCK, link, request, outcome=Outcome.DENIED, failures=link.failed_attempts
        )
    return bool(locked)


def revoke_upload_link(link: UploadLink, *, by, request=None) -> bool:
    """Stop a link at once; return False if it was revoked already."""
    updated = UploadLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if updated:
        record(Action.SHARE_REVOKE, link, request, user=by)
    return bool(updated)


def unlock_upload_link(link: UploadLink, *, by, request=None) -> bool:
    """Lift a lock after wrong answers; return False if it was not locked."""
    updated = UploadLink.objects.filter(pk=link.pk, locked_at__isnull=False).update(
        locked_at=None, failed_attempts=0
    )
    if updated:
        record(Action.SHARE_UNLOCK, link, request, user=by)
    return bool(updated)


def record(action: str, link: UploadLink, request, *, user=None, outcome=Outcome.OK, **detail):  # noqa: ANN001, ANN201
    """Write an access-history event about an upload link (its patient, its code, detail)."""
    audit.record(
        action,
        request=request,
        user=user,
        practice=link.practice,
        patient=link.patient,
        obj=link,
        outcome=outcome,
        detail={"upload_link": str(link.code), **detail},
    )


def upload_links_in_scope(scope):  # noqa: ANN001, ANN201 - a Scope; an UploadLink queryset
    """The upload links of patients a staff member may see."""
    return UploadLink.objects.filter(practice=scope.practice, patient__in=scope.patients())
