"""What a series holds beyond images: documents to show, downloads to offer, key images.

Reads the database and, for documents and key-image lists, the stored objects themselves.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import partial
from typing import Any

import pydicom
from django.conf import settings
from pydicom.uid import UID

from portal import vault
from portal.models import Instance, Series
from viewer import documents, fragments, render
from viewer.layouts import Layout

NOT_VIEWABLE = "Available to download, not viewable here: "


def series_kinds(series: Series) -> list[tuple[str, Instance]]:
    """Return (kind, instance) for every instance of the series, in instance order."""
    rows = (
        Instance.objects.filter(series=series)
        .select_related("blob")
        .only("sop_class_uid", "transfer_syntax_uid", "rows", "sop_instance_uid", "blob")
        .order_by("instance_number", "pk")
    )
    return [
        (documents.kind_of(i.sop_class_uid, i.transfer_syntax_uid, bool(i.rows)), i) for i in rows
    ]


def describe(series: Series, base: str) -> dict[str, Any]:
    """Return manifest fields for a series that holds no image: a document, or why not."""
    kinds = series_kinds(series)
    if not kinds or any(kind == documents.IMAGE for kind, _ in kinds):
        return {}
    kind, instance = kinds[0]
    if kind in (documents.PDF, documents.SR):
        return {"document": {"kind": kind, "url": f"{base}/document"}, "error": ""}
    if kind == documents.VIDEO and video_is_playable(instance):
        return {"document": {"kind": "video", "url": f"{base}/video.mp4"}, "error": ""}
    name = getattr(UID(instance.sop_class_uid), "name", "") or instance.sop_class_uid
    return {"error": NOT_VIEWABLE + documents.not_viewable_reason(kind, name) + "."}


# A playable copy is made in memory; a larger video is offered as a download only.
MAX_VIDEO_BYTES = 512 * 2**20
_PIXEL_TAG_LE = b"\xe0\x7f\x10\x00"
_ITEM = b"\xfe\xff\x00\xe0"


def video_is_playable(instance: Instance) -> bool:
    """Tell whether a browser can play the video as it is stored: H.264 in an MP4 container."""
    if instance.transfer_syntax_uid not in documents.PLAYABLE_SYNTAXES:
        return False
    if instance.blob.plain_size > MAX_VIDEO_BYTES:
        return False
    head = vault.read_bytes(instance.blob, 0, min(instance.blob.plain_size, 1 << 20))
    at = head.rfind(_PIXEL_TAG_LE)
    if at < 0:
        return False
    first = head.find(_ITEM, at)  # the basic offset table
    if first < 0:
        return False
    table = int.from_bytes(head[first + 4 : first + 8], "little")
    fragment = first + 8 + table
    return head[fragment : fragment + 4] == _ITEM and head[fragment + 12 : fragment + 16] == b"ftyp"


# A video's fragments are listed before it streams. Writers cut a video into fragments of
# up to megabytes (PS3.5 A.4: a fragment per frame at most); far more is a file built to hurt.
MAX_VIDEO_FRAGMENTS = 20_000


def playable_video(series: Series) -> tuple[int, Iterator[bytes]] | None:
    """Return (size, chunks) of the MP4 a series' video object holds, or None.

    Its fragments are streamed from the vault as they are sent: a video of hundreds of
    megabytes is never held in memory.
    """
    for kind, instance in series_kinds(series):
        if kind == documents.VIDEO and video_is_playable(instance):
            blob = instance.blob
            try:
                offset, _, encapsulated = fragments.locate(blob)
                if not encapsulated:
                    return None
                read = partial(vault.read_bytes, blob)
                found = fragments.items(blob.plain_size, offset, read, MAX_VIDEO_FRAGMENTS)
            except (fragments.DamagedPixels, fragments.TooManyItems):
                return None
            video = found[1:]  # after the basic offset table
            return sum(n for _, _, n in video), fragments.stream(blob, video)
    return None


def document(series: Series) -> tuple[bytes, str]:
    """Return (content, content type) of a series' first PDF or report, else a text summary."""
    kinds = series_kinds(series)
    for kind, instance in kinds:
        if kind not in (documents.PDF, documents.SR):
            continue
        ds = pydicom.dcmread(io.BytesIO(vault.read_bytes(instance.blob)))
        if kind == documents.PDF:
            return documents.pdf_bytes(ds), "application/pdf"
        return documents.sr_text(ds).encode("utf-8"), "text/plain; charset=utf-8"
    lines = [f"This series holds {len(kinds)} object(s):"]
    for kind, instance in kinds:
        sop = getattr(UID(instance.sop_class_uid), "name", "") or instance.sop_class_uid
        syntax = UID(instance.transfer_syntax_uid)
        lines.append(f"- {kind}: {sop}, {getattr(syntax, 'name', '') or syntax}")
    return ("\n".join(lines) + "\n").encode("utf-8"), "text/plain; charset=utf-8"


def key_image_indexes(series: Series, layout: Layout) -> list[int]:
    """Return the slice indexes that a Key Object Selection of the study names."""
    lists = Instance.objects.filter(
        series__study_id=series.study_id, sop_class_uid=documents.KEY_OBJECT_SELECTION
    ).select_related("blob")
    wanted: set[str] = set()
    for instance in lists:
        try:
            ds = pydicom.dcmread(io.BytesIO(vault.read_bytes(instance.blob)))
        except (ValueError, EOFError, TypeError, AttributeError):  # a damaged list marks nothing
            continue
        wanted.update(documents.key_image_uids(ds))
    if not wanted:
        return []
    blobs = set(
        Instance.objects.filter(series=series, sop_instance_uid__in=wanted).values_list(
            "blob_id", flat=True
        )
    )
    return [k for k, ref in enumerate(layout.slices) if ref.blob.pk in blobs and ref.frame == 0]


def render_check(instance: Instance) -> tuple[str, str]:
    """Return (kind, why it is not shown, or "" when it is) for one stored object.

    An image is checked by decoding its first frame only, under the pixel limits.
    """
    kind = documents.kind_of(
        instance.sop_class_uid, instance.transfer_syntax_uid, bool(instance.rows)
    )
    if kind in (documents.PDF, documents.SR):
        return kind, ""
    name = getattr(UID(instance.sop_class_uid), "name", "") or instance.sop_class_uid
    if kind != documents.IMAGE:
        return kind, documents.not_viewable_reason(kind, name)
    try:
        ds = pydicom.dcmread(io.BytesIO(vault.read_bytes(instance.blob)))
        geometry = render.image_geometry(ds)
        limits = (settings.PORTAL_MAX_IMAGE_PIXELS, settings.PORTAL_MAX_DICOM_PIXELS)
        render.check_pixels(geometry, limits, "viewer")
        decoder = render.decoder_for(ds, geometry)
        decoder.as_array(ds, index=0, as_rgb=True)
    except render.DecodeError as exc:
        return kind, str(exc)
    # pydicom raises nearly any exception type on malformed pixel data; all mean the same.
    except Exception:  # noqa: BLE001
        return kind, "The pixel data could not be decoded (truncated, corrupt or unsupported)."
    return kind, ""
