"""The download limit of a link: what counts as a download, decided one request at a time.

Every download is decided under the link's row lock (sharing.services.lock_link), so
parallel requests of one link are serialised and the limit cannot be overrun. A download
counts when its stream serves its first byte, whatever the Range: the claim is taken when
the response is made and given back if the stream closes before its first byte.

A single file resumed by the same session within RESUME_WINDOW counts once: the resume
rides on the earlier count for as long as the bytes sent under it (or being sent) do not
exceed the file's size. So a download manager fetching a file in ranges, or a browser
resuming a broken download, uses one download; `bytes=0-0` followed by `bytes=1-` several
times at once gets the file once.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from portal.rows import fetch_one
from sharing.models import DownloadGrant, ShareLink
from sharing.services import lock_link

RESUME_WINDOW = timedelta(minutes=15)


def _now() -> datetime:
    return timezone.now()


@dataclass(frozen=True)
class Claim:
    """A download allowed to stream: counted, or a resume riding on `grant_pk`'s count."""

    share_pk: int
    counted: bool
    grant_pk: int | None = None
    reserved: int = 0


def _session_hash(request: HttpRequest) -> str:
    key = request.session.session_key or ""
    return hashlib.sha256(key.encode()).hexdigest()


def claim(
    request: HttpRequest,
    share: ShareLink,
    *,
    object_code=None,
    size: int = 0,
    start: int = 0,
    stop: int = 0,
) -> Claim | None:
    """Decide whether a download may stream and whether it counts; None if it may not.

    Call inside a transaction: the link's row stays locked until it commits, and the audit
    record of the download's start (written after) comes second in the lock order.
    """
    if object_code is None:
        return _count_whole(share)
    locked = lock_link(share.pk)
    if locked.revoked_at is not None or not locked.allow_download:
        return None
    now = _now()
    length = stop - start
    session_hash = _session_hash(request)
    if object_code is not None:
        grant = DownloadGrant.objects.filter(
            share=locked,
            object_code=object_code,
            session_hash=session_hash,
            touched_at__gt=now - RESUME_WINDOW,
        ).first()
        if grant is not None and grant.bytes_granted + length <= size:
            DownloadGrant.objects.filter(pk=grant.pk).update(
                bytes_granted=F("bytes_granted") + length, touched_at=now
            )
            return Claim(locked.pk, counted=False, grant_pk=grant.pk, reserved=length)
    if locked.max_downloads is not None and locked.download_count >= locked.max_downloads:
        return None
    ShareLink.objects.filter(pk=locked.pk).update(download_count=F("download_count") + 1)
    share.download_count = locked.download_count + 1
    if object_code is None:
        return Claim(locked.pk, counted=True)
    grant, _ = DownloadGrant.objects.update_or_create(
        share=locked,
        object_code=object_code,
        session_hash=session_hash,
        defaults={"bytes_granted": length, "counted_at": now, "touched_at": now},
    )
    return Claim(locked.pk, counted=True, grant_pk=grant.pk, reserved=length)


@functools.cache
def _count_whole_sql(vendor: str) -> str:  # noqa: ARG001 - one statement per database kind
    q = connection.ops.quote_name
    return (
        f"UPDATE {q(ShareLink._meta.db_table)} SET download_count = download_count + 1 "  # noqa: S608
        "WHERE id = %s AND revoked_at IS NULL AND allow_download "
        "AND (max_downloads IS NULL OR download_count < max_downloads) RETURNING download_count"
    )


def _count_whole(share: ShareLink) -> Claim | None:
    """Count a whole ZIP in one statement, if the link still allows one.

    The UPDATE locks the link's row until the transaction commits, as lock_link would, so the
    lock order holds: the link's row, then the audit head.
    """
    row = fetch_one(connection, _count_whole_sql(connection.vendor), [share.pk])
    if row is None:
        return None
    share.download_count = row[0]
    return Claim(share.pk, counted=True)


def settle(claim: Claim, sent: int) -> None:
    """After the stream ended: give back the reserved bytes that were never sent."""
    if claim.grant_pk is None or sent >= claim.reserved:
        return
    with transaction.atomic():
        lock_link(claim.share_pk)
        DownloadGrant.objects.filter(pk=claim.grant_pk).update(
            bytes_granted=F("bytes_granted") - (claim.reserved - sent), touched_at=_now()
        )


def release(claim: Claim) -> None:
    """The stream closed before its first byte: the download does not count."""
    with transaction.atomic():
        lock_link(claim.share_pk)
        if claim.counted:
            ShareLink.objects.filter(pk=claim.share_pk, download_count__gt=0).update(
                download_count=F("download_count") - 1
            )
        if claim.grant_pk is not None:
            DownloadGrant.objects.filter(pk=claim.grant_pk).update(
                bytes_granted=F("bytes_granted") - claim.reserved
            )
