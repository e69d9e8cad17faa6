"""What each download of a share holds and about how much it weighs, for the recipient's page.

Original files are counted from the stored sizes (a ZIP adds well under 1 %). Pictures are
rendered on request, so their size is an estimate from the image dimensions, measured on the
generated CBCT (noise included, tests/sharing/test_download_sizes.py): a windowed greyscale
slice takes about 0.15 byte per pixel as JPEG and 0.5 as PNG.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F, Sum

from portal.models import Instance

JPEG_BYTES_PER_PIXEL = 0.15
PNG_BYTES_PER_PIXEL = 0.5
ZIP_OVERHEAD = 1.01


@dataclass(frozen=True)
class SeriesSizes:
    """One series: how many images, and the bytes of its originals and of its pictures."""

    images: int
    original: int
    jpeg: int
    png: int


def series_sizes(series_ids: list[int]) -> dict[int, SeriesSizes]:
    """Return the sizes of each series, in one query."""
    rows = (
        Instance.objects.filter(series_id__in=series_ids)
        .values("series_id")
        .annotate(
            images=Sum("frames"),
            original=Sum("blob__plain_size"),
            pixels=Sum(F("rows") * F("columns") * F("frames")),
        )
    )
    found = {}
    for row in rows:
        pixels = row["pixels"] or 0
        found[row["series_id"]] = SeriesSizes(
            images=row["images"] or 0,
            original=int((row["original"] or 0) * ZIP_OVERHEAD),
            jpeg=int(pixels * JPEG_BYTES_PER_PIXEL),
            png=int(pixels * PNG_BYTES_PER_PIXEL),
        )
    return found


def totals(sizes: dict[int, SeriesSizes], attachment_bytes: int) -> dict[str, int]:
    """Return the whole share's original-files ZIP and pictures ZIP sizes and image count."""
    return {
        "images": sum(s.images for s in sizes.values()),
        "original": sum(s.original for s in sizes.values()) + attachment_bytes,
        "pictures": sum(s.jpeg for s in sizes.values()) + attachment_bytes,
    }
