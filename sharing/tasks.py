"""Share jobs run by a Celery worker."""

from __future__ import annotations

from celery import shared_task

from portal import deidentified_copy
from portal.access import Scope
from portal.models import Study
from sharing import plans
from sharing.models import ShareLink
from sharing.notices import send_link_notices  # noqa: F401 - registered with the worker


@shared_task(acks_late=True)
def prepare_download(share_pk: int) -> None:
    """Work out a new link's ZIP (DICOMDIR, sizes) so its first download starts at once."""
    share = ShareLink.objects.filter(pk=share_pk, revoked_at__isnull=True).first()
    if share is not None and share.allow_download:
        plans.prepare_share(Scope(share=share))


@shared_task(acks_late=True)
def dispose_copy(study_pk: int) -> int:
    """Shred a de-identified copy once its links are closed (right after a revoke)."""
    study = Study.objects.filter(pk=study_pk).select_related("practice", "patient").first()
    return deidentified_copy.dispose_if_closed(study) if study is not None else 0
