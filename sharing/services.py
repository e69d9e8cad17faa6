"""Share-link services other apps call: issue, look up, revoke, email."""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import audit
from audit.models import Action
from portal import deidentified_copy
from portal.access import Scope, member_of
from portal.deidentified_copy import Copy, make_copy, queue_previews
from sharing.mail import send_templated as _send
from sharing.models import LinkRequest, ShareLink

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


def link_days(practice, expires_in_days: int | None) -> int:
    """Return a link's lifetime in days: the practice default, within its maximum."""
    days = expires_in_days if expires_in_days is not None else practice.share_default_days
    if days < 1 or days > practice.share_max_days:
        raise ValidationError(
            f"Expiry must be between 1 and {practice.share_max_days} days for this practice."
        )
    return days


@dataclass
class IssuedLink:
    """What staff see exactly once: the link and its token; only hashes are kept."""

    share: ShareLink
    token: str
    password: str
    deidentified: Copy | None = None

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
    notify_recipient: bool = False,
    deidentified: bool = False,
    request=None,
) -> IssuedLink:
    """Create a share link and return its one-time token and password.

    deidentified: the link serves a de-identified copy of the study (or of the chosen
    series) only, made now and stored like the originals (portal.deidentified_copy). It goes
    to a clinician or a teacher, who signs in with the password and an emailed code; never
    to the patient, whose birth date would be the wrong proof for data that names no one.
    """
    practice = study.practice
    days = link_days(practice, expires_in_days)
    if recipient_kind not in ShareLink.Recipient.values:
        raise ValidationError("Unknown recipient kind.")
    if recipient_kind == ShareLink.Recipient.REFERRER and not recipient_email:
        raise ValidationError("A referrer link needs the referrer's email for the sign-in code.")
    if recipient_kind == ShareLink.Recipient.PATIENT and study.patient.birth_date is None:
        # The recipient proves who they are with it; without one the link could never open.
        raise ValidationError("A patient link needs the patient's date of birth on file.")
    if deidentified:
        _check_deidentified(recipient_kind, attachments)
    _check_issuer(created_by, study)
    _check_recipient(practice, recipient_email)
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
        copy = _copy(study, series) if deidentified else None
        share = ShareLink.objects.create(
            practice=practice,
            patient=copy.study.patient if copy else study.patient,
            study=copy.study if copy else study,
            source_study=study if copy else None,
            source_patient=study.patient if copy else None,
            recipient_kind=recipient_kind,
            recipient_email=recipient_email,
            recipient_name=recipient_name,
            token_hash=hash_token(token),
            password_hash=make_password(password),
            expires_at=timezone.now() + timedelta(days=days),
            allow_download=allow_download,
            max_downloads=max_downloads,
            notify_recipient=notify_recipient and bool(recipient_email),
            created_by=created_by,
            # A de-identified copy holds only the chosen series: it is shared whole.
            whole_study=not ((series and copy is None) or attachments),
        )
        if series and copy is None:
            share.series.set(series)
        if attachments:
            share.attachments.set(attachments)
        # A recipient who asked for a new link of this study has it now.
        LinkRequest.objects.filter(
            Q(share__study=study) | Q(share__source_study=study),
            share__recipient_kind=recipient_kind,
            share__source_study__isnull=not deidentified,
            handled_at__isnull=True,
        ).update(handled_at=timezone.now(), handled_by=created_by)
        transaction.on_commit(lambda: _prepare_download(share.pk))
        audit.record(
            Action.SHARE_ISSUE,
            request=request,
            user=created_by,
            share=share,
            obj=study,
            detail={
                "recipient": recipient_kind,
                "days": days,
                "download": allow_download,
                **(copy.as_detail() if copy else {}),
            },
        )
    return IssuedLink(share=share, token=token, password=password, deidentified=copy)


def _check_deidentified(recipient_kind: str, attachments) -> None:  # noqa: ANN001
    if recipient_kind != ShareLink.Recipient.REFERRER:
        raise ValidationError(
            "A de-identified copy is for a clinician or a teacher, who signs in with the "
            "password and a code sent to their email; choose 'Referring clinician'."
        )
    if attachments:
        raise ValidationError("A de-identified copy holds DICOM images only, no photos or reports.")


def _copy(study, series) -> Copy:  # noqa: ANN001
    copy = make_copy(study, series or None)
    if copy.study is None:
        raise ValidationError(
            "No file of this study can be de-identified under the practice's options: "
            + "; ".join(copy.left_out[:3])
        )
    queue_previews(copy)
    return copy


def _prepare_download(share_pk: int) -> None:
    from sharing.tasks import prepare_download

    prepare_download.delay(share_pk)


NO_IMAGE_RIGHTS = (
    "Your role does not open images in this practice, so it cannot share them either. "
    "Ask a clinician or the practice admin to issue the link."
)


def _check_issuer(created_by, study) -> None:
    """Refuse an issuer who could not open what the link covers themselves."""
    member = member_of(created_by) if created_by is not None else None
    if member is None or member.practice_id != study.practice_id:
        raise ValidationError("Only staff of the study's practice can share it.")
    scope = Scope(practice=member.practice, staff=member)
    if not scope.can_view_pixels:
        raise ValidationError(NO_IMAGE_RIGHTS)
    if not scope.studies().filter(pk=study.pk).exists():
        raise ValidationError("You cannot see this study, so you cannot share it.")


def _check_recipient(practice, email: str) -> None:
    """Refuse a link addressed to the practice's own staff: they use the workspace."""
    if (
        email
        and User.objects.filter(
            email__iexact=email.strip(), staffmember__practice=practice
        ).exists()
    ):
        raise ValidationError(
            "That address belongs to a member of this practice's staff. Staff open images "
            "in the workspace with their own sign-in; links are for patients and referrers."
        )


def lock_link(pk: int) -> ShareLink:
    """Lock one share link's row for the rest of the transaction and return it fresh.

    Lock order, everywhere: (1) a verification attempt's per-address advisory lock
    (sharing.throttle), (2) the share link's row, (3) the audit chain head, taken last by
    audit.record(). Only the link's own row is locked (`of=("self",)`, never the practice
    row through a join), as FOR NO KEY UPDATE, so audit events and verification failures
    that refer to the link, its practice or patient can still be inserted by others.
    """
    return (
        ShareLink.objects.select_for_update(of=("self",), no_key=True)
        .select_related("practice")
        .get(pk=pk)
    )


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
        if share.deidentified:  # its copy goes with it, unless another link still needs it
            from sharing.tasks import dispose_copy  # noqa: PLC0415 - the task app loads late

            study_pk = share.study_id
            transaction.on_commit(lambda: dispose_copy.delay(study_pk))
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


def extend_limit(share: ShareLink):  # noqa: ANN201 - a datetime
    """Return the latest expiry the practice allows for a link: its maximum from issue time."""
    return share.latest_expiry


def extend_days_left(share: ShareLink) -> int:
    """Return the most days from now a link may be extended by (0: at the maximum already).

    The last of them may be part of a day: extending by it moves the expiry to the limit.
    """
    seconds = (extend_limit(share) - timezone.now()).total_seconds()
    return max(0, math.ceil(seconds / 86400 - 1e-6)) if seconds > 60 else 0


def extend_link(share: ShareLink, *, days: int, by, request=None) -> None:
    """Move the expiry to `days` from now, never past the practice maximum from issue time.

    Any number of days up to extend_days_left is accepted; one that would pass the maximum
    (by less than a day) stops at it.
    """
    # The link's row is locked first: a disposal of its de-identified copy (which locks the
    # link too) either waits for this extension or went first and is seen here.
    with transaction.atomic():
        if lock_link(share.pk).revoked_at:
            raise ValidationError("A revoked link cannot be extended.")
        if share.deidentified and deidentified_copy.disposed(share.study):
            raise ValidationError(
                "The de-identified copy made for this link was removed when the link closed. "
                "Issue a new link instead."
            )
        left = extend_days_left(share)
        if days < 1 or days > left:
            maximum = share.practice.share_max_days
            if left < 1:
                raise ValidationError(
                    f"This link has reached the practice's maximum of {maximum} days from "
                    "when it was issued. Issue a new link instead."
                )
            raise ValidationError(
                f"Choose between 1 and {left} days: a link can live at most {maximum} days "
                "from when it was issued."
            )
        share.expires_at = min(timezone.now() + timedelta(days=days), extend_limit(share))
        share.save(update_fields=["expires_at"])
        audit.record(
            Action.SHARE_EXTEND, request=request, user=by, share=share, detail={"days": days}
        )


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
