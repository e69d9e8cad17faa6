"""Thumbnails of series and attachments, stored encrypted in the vault like the originals."""

from __future__ import annotations

import io
from functools import lru_cache

from django.conf import settings
from PIL import Image, ImageDraw

from portal import vault
from portal.models import Attachment, Series
from viewer import mpr, render

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
    """Render the middle slice of a series; raise render.DecodeError when it cannot."""
    layout = mpr.layout_for(series)
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
    try:
        data = series_thumbnail(series)
    except render.DecodeError as exc:
        note_decode_error(series, exc)
        return placeholder("?")
    series.thumbnail = vault.store_bytes(data)
    series.save(update_fields=["thumbnail"])
    note_decodable(series)
    return data


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
    attachment.thumbnail = vault.store_bytes(data)
    attachment.save(update_fields=["thumbnail"])
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


def _shown_slice(layout: mpr.Layout) -> bytes:
    """Render the slice the viewer opens on (the middle one, if it decodes) as a small JPEG."""
    values, info = mpr.plane_values(layout, "axial", mpr.first_decodable(layout))
    window = layout.default_window()
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
