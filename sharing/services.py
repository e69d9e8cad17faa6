"""Share-link services other apps call: issue, look up, revoke, email."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

import audit
from audit.models import Action
from sharing.models import ShareLink

WORDS = (
    "amber anchor apple arrow aspen badge basil beach berry birch bloom brook cabin cedar "
    "cherry cliff clover coral cotton creek daisy delta dune eagle ember fable fern field "
    "flint forest frost garden glade granite harbor hazel heron honey island ivory jade "
    "juniper kettle lagoon lemon lilac linen maple meadow melon mint moss noble oak ocean "
    "olive orchid otter pearl pebble pepper pine plum prairie quartz quill raven reef river "
    "robin saffron sage salt shore silver slate spruce stone summit sunny thyme tiger "
    "timber topaz tulip valley velvet violet walnut willow winter wren yarrow zephyr"
).split()


def hash_token(token: str) -> str:
    """Return the SHA-256 under which a share token is stored and looked up."""
    return hashlib.sha256(token.encode()).hexdigest()


def generate_password() -> str:
    """Return a password easy to read aloud: four words and two digits (about 30+ bits)."""
    words = [secrets.choice(WORDS) for _ in range(4)]
    return "-".join(words) + f"-{secrets.randbelow(100):02d}"


@dataclass
class IssuedLink:
    """What staff see exactly once: the link and its token; only hashes are kept."""

    share: ShareLink
    token: str
    password: str

    @property
    def path(self) -> str:
        return f"/s/{self.token}"


def issue_link(
    *,
    study,
    created_by,
    recipient_kind: str,
    recipient_email: str = "",
    recipient_name: str = "",
    series=(),
    attachments=(),
    expires_in_days: int | None = None,
    password: str | None = None,
    allow_download: bool = True,
    max_downloads: int | None = None,
    request=None,
) -> IssuedLink:
    """Create a share link and return its one-time token and password."""
    practice = study.practice
    days = expires_in_days if expires_in_days is not None else practice.share_default_days
    if days < 1 or days > practice.share_max_days:
        raise ValidationError(
            f"Expiry must be between 1 and {practice.share_max_days} days for this practice."
        )
    if recipient_kind not in ShareLink.Recipient.values:
        raise ValidationError("Unknown recipient kind.")
    if recipient_kind == ShareLink.Recipient.REFERRER and not recipient_email:
        raise ValidationError("A referrer link needs the referrer's email for the sign-in code.")
    if recipient_kind == ShareLink.Recipient.PATIENT and study.patient.birth_date is None:
        # The recipient proves who they are with it; without one the link could never open.
        raise ValidationError("A patient link needs the patient's date of birth on file.")
    series = list(series)
    attachments = list(attachments)
    if any(s.study_id != study.pk for s in series):
        raise ValidationError("A chosen series is not part of this study.")
    if any(a.patient_id != study.patient_id for a in attachments):
        raise ValidationError("A chosen attachment belongs to another patient.")
    password = password or generate_password()
    if len(password) < 8:
        raise ValidationError("The link password must be at least 8 characters.")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        share = ShareLink.objects.create(
            practice=practice,
            patient=study.patient,
            study=study,
            recipient_kind=recipient_kind,
            recipient_email=recipient_email,
            recipient_name=recipient_name,
            token_hash=hash_token(token),
            password_hash=make_password(password),
            expires_at=timezone.now() + timedelta(days=days),
            allow_download=allow_download,
            max_downloads=max_downloads,
            created_by=created_by,
        )
        if series:
            share.series.set(series)
        if attachments:
            share.attachments.set(attachments)
        audit.record(
            Action.SHARE_ISSUE,
            request=request,
            user=created_by,
            share=share,
            obj=study,
            detail={"recipient": recipient_kind, "days": days, "download": allow_download},
        )
    return IssuedLink(share=share, token=token, password=password)


def find_link(token: str) -> ShareLink | None:
    """Return the link a token opens, or None; the token itself is never stored or logged."""
    if not token or len(token) > 100:
        return None
    return ShareLink.objects.select_related("practice").filter(token_hash=hash_token(token)).first()


def revoke_link(share: ShareLink, *, by, request=None) -> bool:
    """Revoke at once; return False (and change nothing) if it was already revoked."""
    updated = ShareLink.objects.filter(pk=share.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=by
    )
    share.refresh_from_db()
    if updated:
        audit.record(Action.SHARE_REVOKE, request=request, user=by, share=share)
    return bool(updated)


def unlock_link(share: ShareLink, *, by, request=None) -> bool:
    """Lift a lock after failed verifications; return False if it was not locked."""
    updated = ShareLink.objects.filter(pk=share.pk, locked_at__isnull=False).update(
        locked_at=None, failed_attempts=0
    )
    share.refresh_from_db()
    if updated:
        audit.record(Action.SHARE_UNLOCK, request=request, user=by, share=share)
    return bool(updated)


def extend_link(share: ShareLink, *, days: int, by, request=None) -> None:
    """Move the expiry to `days` from now, never past the practice maximum from issue time."""
    limit = share.created_at + timedelta(days=share.practice.share_max_days)
    new_expiry = timezone.now() + timedelta(days=days)
    if days < 1 or new_expiry > limit:
        raise ValidationError(
            f"A link can live at most {share.practice.share_max_days} days from when it was issued."
        )
    if share.revoked_at:
        raise ValidationError("A revoked link cannot be extended.")
    share.expires_at = new_expiry
    share.save(update_fields=["expires_at"])
    audit.record(Action.SHARE_EXTEND, request=request, user=by, share=share, detail={"days": days})


def _send(name: str, to: str, context: dict) -> None:
    subject = render_to_string(f"emails/{name}-subject.txt", context).strip().splitlines()[0]
    text = render_to_string(f"emails/{name}-body.txt", context)
    html = render_to_string(f"emails/{name}-body.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [to])
    message.attach_alternative(html, "text/html")
    message.send()


def send_link_email(issued: IssuedLink, *, request=None) -> None:
    """Email the link (never the password, never the patient's condition) to the recipient."""
    share = issued.share
    if not share.recipient_email:
        raise ValidationError("This link has no recipient email address.")
    context = {
        "practice": share.practice,
        "url": settings.PORTAL_BASE_URL.rstrip("/") + issued.path,
        "expires_at": share.expires_at,
        "is_patient": share.recipient_kind == ShareLink.Recipient.PATIENT,
        "recipient_name": share.recipient_name,
    }
    _send("share-link", share.recipient_email, context)
    audit.record(Action.SHARE_EMAIL, request=request, share=share, detail={"email": "link"})


def send_code_email(share: ShareLink, one_time_code: str, *, request=None) -> None:
    """Email a referrer the 6-digit sign-in code for a link."""
    context = {"practice": share.practice, "one_time_code": one_time_code, "minutes": 10}
    _send("share-code", share.recipient_email, context)
    audit.record(Action.SHARE_EMAIL, request=request, share=share, detail={"email": "sign_in_code"})
