"""Access tokens for a recipient's software: made once, stored as a hash, bound to one share."""

from __future__ import annotations

import secrets
from datetime import timedelta
from enum import IntEnum

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

import audit
from audit.models import Action
from portal.rows import fetch_row
from portal.textchecks import refuse_control_characters
from sharing.models import ShareLink, SoftwareToken
from sharing.services import hash_token, lock_link

PREFIX = "pst_"  # recognisable in a secret scanner's rules; not part of the secret's entropy
MAX_TOKENS_PER_SHARE = 5
MAX_DAYS = 30


def create_token(share: ShareLink, *, label: str = "", days: int | None = None, request=None):
    """Return (SoftwareToken, the token): the token is shown once and never stored.

    The share's row is locked while its live tokens are counted, so that forms sent at once
    (several pages of the software page open) make no more than MAX_TOKENS_PER_SHARE.
    """
    with transaction.atomic():
        return _create_token(lock_link(share.pk), label, days, request)


def _create_token(share: ShareLink, label: str, days: int | None, request):  # noqa: ANN001, ANN202
    if share.status != ShareLink.Status.ACTIVE:
        raise ValidationError("This link can no longer be used.")
    refuse_control_characters(label)
    if not share.allow_download:
        raise ValidationError("This link is for viewing only; software needs the originals.")
    live = share.tokens.filter(revoked_at__isnull=True, expires_at__gt=timezone.now()).count()
    if live >= MAX_TOKENS_PER_SHARE:
        raise ValidationError(f"At most {MAX_TOKENS_PER_SHARE} tokens per link: revoke one first.")
    expires = share.expires_at
    if days is not None:
        if not 1 <= days <= MAX_DAYS:
            raise ValidationError(f"A token lasts between 1 and {MAX_DAYS} days.")
        expires = min(expires, timezone.now() + timedelta(days=days))
    raw = PREFIX + secrets.token_urlsafe(32)
    token = SoftwareToken.objects.create(
        share=share, label=label[:100], token_hash=hash_token(raw), expires_at=expires
    )
    audit.record(
        Action.SOFTWARE_TOKEN,
        request=request,
        share=share,
        obj=token,
        detail={"event": "created", "expires": expires.isoformat()},
    )
    return token, raw


def revoke_token(token: SoftwareToken, *, request=None) -> bool:
    """Revoke at once; return False if it was revoked already."""
    updated = SoftwareToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if updated:
        audit.record(
            Action.SOFTWARE_TOKEN,
            request=request,
            share=token.share,
            obj=token,
            detail={"event": "revoked"},
        )
    return bool(updated)


def find_token(raw: str) -> SoftwareToken | None:
    """Return the token row a presented secret opens (usable or not), or None."""
    if not raw or len(raw) > 100 or not raw.startswith(PREFIX):
        return None
    return fetch_row(SoftwareToken, "token_hash", hash_token(raw))


class Counted(IntEnum):
    """What count_download_once did; false only when nothing may be downloaded."""

    NONE_LEFT = 0
    ALREADY = 1  # this token counted its download before (or a parallel request just did)
    NOW = 2  # this request counted it


def count_download_once(token: SoftwareToken, share: ShareLink) -> Counted:
    """Count this token's first retrieval of originals as one download of the share.

    Call inside a transaction: requests of one token arriving together (a viewer fetching
    frames in parallel) wait on the link's row, and only the one that claims the token's
    flag counts.
    """
    if token.download_counted:
        return Counted.ALREADY
    lock_link(share.pk)
    claimed = SoftwareToken.objects.filter(pk=token.pk, download_counted=False).update(
        download_counted=True
    )
    token.download_counted = True
    if not claimed:
        return Counted.ALREADY
    allowed = Q(max_downloads__isnull=True) | Q(download_count__lt=F("max_downloads"))
    counted = ShareLink.objects.filter(allowed, pk=share.pk, allow_download=True).update(
        download_count=F("download_count") + 1
    )
    if not counted:
        SoftwareToken.objects.filter(pk=token.pk).update(download_counted=False)
        token.download_counted = False
        return Counted.NONE_LEFT
    return Counted.NOW


def downloads_left(token: SoftwareToken, share: ShareLink) -> bool:
    """Whether this token may still have originals, judged on rows read by this request.

    A "no" is checked against the token's row again: a parallel request of the same token
    (a viewer's first frames) may have counted the link's last download for it meanwhile.
    """
    if token.download_counted:
        return True
    limit = share.max_downloads
    if share.allow_download and (limit is None or share.download_count < limit):
        return True
    token.download_counted = SoftwareToken.objects.filter(
        pk=token.pk, download_counted=True
    ).exists()
    return share.allow_download and token.download_counted
