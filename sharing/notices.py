"""Emails about a link's use: its first open and first download, to whoever issued it and,
when asked at issue time, to its recipient. They name no patient, study or recipient: only
the practice, when it happened, and where staff find the link.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

import audit
from audit.models import Action
from sharing.mail import send_templated
from sharing.models import ShareLink

EVENTS = ("opened", "downloaded")


def link_used(share: ShareLink, event: str) -> None:
    """Queue the notices of a link's first open or first download, once the change commits."""
    if event not in EVENTS or not share.practice.notify_link_activity:
        return
    if not (share.notify_recipient and share.recipient_email) and not _issuer_email(share):
        return
    pk = share.pk
    transaction.on_commit(lambda: send_link_notices.delay(pk, event))


@shared_task(acks_late=True)
def send_link_notices(share_pk: int, event: str) -> None:
    """Email the issuer (and, if asked, the recipient) that a link was first opened or used."""
    send_notices(share_pk, event)


def _issuer_email(share: ShareLink) -> str:
    user = share.created_by
    return (user.email or "") if user is not None and user.is_active else ""


def send_notices(share_pk: int, event: str) -> int:
    """Email the notices of one event of a link; return how many were sent."""
    share = ShareLink.objects.select_related("practice", "created_by").filter(pk=share_pk).first()
    if share is None or event not in EVENTS or not share.practice.notify_link_activity:
        return 0
    practice = share.practice
    context = {
        "practice": practice,
        "event": event,
        "when": timezone.localtime(timezone.now(), practice.zone),
        "issued_at": timezone.localtime(share.created_at, practice.zone),
        "kind": share.get_recipient_kind_display().lower(),
        "links_url": settings.PORTAL_BASE_URL.rstrip("/") + f"/shares/?link={share.code}",
    }
    sent = 0
    targets = [("issuer", _issuer_email(share), "link-notice-staff")]
    if share.notify_recipient:
        targets.append(("recipient", share.recipient_email, "link-notice-recipient"))
    for who, address, template in targets:
        if not address:
            continue
        # Rendered in a task, whose zone is the server's: times are told in the practice's.
        with timezone.override(practice.zone):
            send_templated(template, address, context)
        audit.record(
            Action.SHARE_EMAIL, share=share, detail={"email": f"{event}_notice", "to": who}
        )
        sent += 1
    return sent
