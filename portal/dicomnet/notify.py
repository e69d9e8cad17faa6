"""Tell the front desk that images arrived, without patient data in the message."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from portal.models import DicomNode, DicomPeer

logger = logging.getLogger(__name__)


def tell_front_desk(
    node: DicomNode, peer: DicomPeer | None, calling_ae: str, studies: int, instances: int
) -> None:
    """Email the practice's front desk address; a mail failure loses no image."""
    context = {
        "practice": node.practice,
        "device": peer.name if peer is not None else calling_ae,
        "studies": studies,
        "instances": instances,
        "url": settings.PORTAL_BASE_URL.rstrip("/") + "/arrivals/",
    }
    subject = render_to_string("emails/dicom-arrival-subject.txt", context).strip()
    text = render_to_string("emails/dicom-arrival-body.txt", context)
    html = render_to_string("emails/dicom-arrival-body.html", context)
    message = EmailMultiAlternatives(
        subject.splitlines()[0], text, settings.DEFAULT_FROM_EMAIL, [node.notify_email]
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except OSError:
        logger.warning("dicom receiver: could not email the front desk of an arrival")
