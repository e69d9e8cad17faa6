"""Thumbnails of series and attachments, stored encrypted in the vault like the originals."""

from __future__ import annotations

import io
from functools import lru_cache, partial

from django.conf import settings
from django.db import transaction
from PIL import Image, ImageDraw

from portal import vault
from portal.models import Attachment, Instance, Series
from viewer import layouts, mpr, render, volumes

THUMB_SIZE = 128


@lru_cache(maxsize=4)
def placeholder(label: str) -> bytes:
    """Return a plain tile with a short label, for PDFs and images that cannot be shown."""
    image = Image.new("L", (THUMB_SIZE, THUMB_SIZE), 60)
    draw = ImageDraw.Draw(image)
    draw.rectangle((28, 16, 100, 112), outline=200, width=3)
    draw.text((44, 56), label, fill=230)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def series_thumbnail(series: Series) -> bytes:
    """Render the slice the viewer opens on; raise render.DecodeError when it cannot."""
    layout = layouts.layout_for(series)
    if not layout.slices:
        raise render.DecodeError("The series has no images.")
    return _shown_slice(layout)


def photo_thumbnail(data: bytes) -> bytes:
    """Shrink a photo to a thumbnail, refusing decompression bombs."""
    Image.MAX_IMAGE_PIXELS = settings.PORTAL_MAX_IMAGE_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (THUMB_SIZE * 2, THUMB_SIZE * 2))
            image = image.convert("RGB")
            image.thumbnail((THUMB_SIZE, THUMB_SIZE))
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=80)
            return buf.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise render.DecodeError("The photo could not be read.") from exc


def attachment_thumbnail(attachment: Attachment) -> bytes:
    """Return a thumbnail of a photo, or the PDF tile."""
    if attachment.kind != Attachment.Kind.PHOTO:
        return placeholder("PDF")
    return photo_thumbnail(vault.read_bytes(attachment.blob))


def ensure_series_thumbnail(series: Series) -> bytes:
    """Return the stored thumbnail, building and storing it first when missing."""
    if series.thumbnail_id:
        return vault.read_bytes(series.thumbnail)
    return refresh_series_thumbnail(series, replace=False)


def refresh_series_thumbnail(series: Series, replace: bool = True) -> bytes:
    """Render the series' thumbnail from the instances filed now and point the series at it.

    Several processes can do this at once (two devices filing parts of one series, each
    queueing previews; two people opening a new series). Under the series' row lock the
    thumbnail is kept only if it was made from as many instances as are filed at that
    moment, else rendered again; an older thumbnail is shredded. With replace=False a
    thumbnail someone else stored meanwhile is kept and ours discarded.
    """
    data = placeholder("?")
    for _ in range(5):
        mpr.forget(series)  # the layout from the instances filed now, not a cached one
        filed = Instance.objects.filter(series_id=series.pk).count()
        try:
            data = series_thumbnail(series)
        except render.DecodeError as exc:
            note_decode_error(series, exc)
            return placeholder("?")
        sealed = vault.seal(io.BytesIO(data))
        kept = None
        with transaction.atomic():
            row = Series.objects.select_for_update().filter(pk=series.pk).first()
            if row is not None and not replace and row.thumbnail_id is not None:
                kept = row.thumbnail  # someone stored one first: theirs stays
            elif row is not None and Instance.objects.filter(series_id=series.pk).count() == filed:
                sealed.save(force_insert=True)
                Series.objects.filter(pk=series.pk).update(thumbnail=sealed)
                if row.thumbnail is not None:
                    transaction.on_commit(partial(vault.shred, row.thumbnail))
                kept = sealed
        if kept is not sealed:
            vault.discard_unsaved(sealed)
        if row is None:
            return data  # the series went away
        if kept is not None:
            series.thumbnail = kept
            note_decodable(series)
            return data if kept is sealed else vault.read_bytes(kept)
        # More instances were filed while this one was drawn: draw it again.
    return data


def ensure_stored_volume(series: Series) -> bool:
    """Store the decoded volume of a volume series unless a current copy exists; True if made.

    Reformats then start with one sequential read instead of decoding every file. A series
    that cannot be decoded, or is too large for the viewer's cache, gets none.
    """
    mpr.forget(series)  # count the instances afresh: this series may just have grown
    layout = layouts.layout_for(series)
    if layout.kind != "volume" or mpr.volume_bytes(layout) > mpr.pixel_cache().max_bytes:
        return False
    if series.volume_id and series.volume_key == volumes.volume_key(layout):
        return False
    try:
        arr = mpr.decode_volume(layout)
    except render.DecodeError:
        return False
    volumes.save(layout, arr)
    return True


def ensure_attachment_thumbnail(attachment: Attachment) -> bytes:
    """Return the stored thumbnail of an attachment, building it first when missing."""
    if attachment.thumbnail_id:
        return vault.read_bytes(attachment.thumbnail)
    if attachment.kind != Attachment.Kind.PHOTO:
        return placeholder("PDF")
    try:
        data = attachment_thumbnail(attachment)
    except render.DecodeError:
        return placeholder("?")
    # Stored only while the attachment's row is locked and still there: one shredded while
    # this was drawn must not leave a readable thumbnail pointing nowhere.
    sealed = vault.seal(io.BytesIO(data))
    with transaction.atomic():
        row = Attachment.objects.select_for_update(of=("self",)).filter(pk=attachment.pk).first()
        keep = row is not None and row.thumbnail_id is None
        if keep:
            sealed.save(force_insert=True)
            Attachment.objects.filter(pk=row.pk).update(thumbnail=sealed)
            attachment.thumbnail = sealed
    if not keep:
        vault.discard_unsaved(sealed)
    return data


def note_decode_error(series: Series, exc: Exception) -> None:
    """Remember why a series cannot be shown; the message names no patient data."""
    message = str(exc)[:200]
    if series.decode_error != message:
        series.decode_error = message
        series.save(update_fields=["decode_error"])


def note_decodable(series: Series) -> None:
    """Clear a stale decode error once the series is seen to decode."""
    if series.decode_error:
        series.decode_error = ""
        series.save(update_fields=["decode_error"])


def _shown_slice(layout: layouts.Layout) -> bytes:
    """Render the slice the viewer opens on (mpr.viewing_slice, if it decodes) as a small JPEG."""
    values, info = mpr.plane_values(layout, "axial", mpr.first_decodable(layout))
    window = mpr.default_window(layout)
    if values.ndim == 3:
        img = values
    else:
        img = render.apply_window(
            values,
            window["center"],
            window["width"],
            info.invert,
            slope=info.slope,
            intercept=info.intercept,
        )
    return render.thumbnail(img)
