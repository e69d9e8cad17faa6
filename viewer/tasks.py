"""Preview tasks: thumbnails and stored volumes, encrypted like everything else."""

from __future__ import annotations

from celery import shared_task

from portal.models import Attachment, Series


@shared_task(acks_late=True)
def build_previews(series_pks: list[int], attachment_pks: list[int]) -> None:
    """Build thumbnails and stored volumes for new or grown series (safe to run twice)."""
    from viewer import mpr, previews

    for series in Series.objects.filter(pk__in=series_pks):
        # The volume first: storing it finds the slice to open on, which the thumbnail shows.
        previews.ensure_stored_volume(series)
        # New or grown: a thumbnail made from part of the series shows the wrong slice.
        previews.refresh_series_thumbnail(series)
        mpr.forget(series)  # a worker would otherwise keep decoded pixels nobody asks for
    attachments = Attachment.objects.filter(pk__in=attachment_pks, thumbnail__isnull=True)
    for attachment in attachments.select_related("blob"):
        previews.ensure_attachment_thumbnail(attachment)
