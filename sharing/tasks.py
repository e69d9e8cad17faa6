"""Share jobs run by a Celery worker."""

from __future__ import annotations

from celery import shared_task

from portal.access import Scope
from sharing import plans
from sharing.models import ShareLink
from sharing.notices import send_link_notices  # noqa: F401 - registered with the worker


@shared_task(acks_late=True)
def prepare_download(share_pk: int) -> None:
    """Work out a new link's ZIP (DICOMDIR, sizes) so its first download starts at once."""
    share = ShareLink.objects.filter(pk=share_pk, revoked_at__isnull=True).first()
    if share is not None and share.allow_download:
        plans.prepare_share(Scope(share=share))
