"""Find the slice each stored CT volume opens on (a dental CBCT's occlusal plane), afresh."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from portal.models import Series
from viewer import layouts, mpr, volumes


class Command(BaseCommand):
    help = (
        "Compute the opening slice (the occlusal plane of a dental CBCT, which also offers the "
        "Panoramic button) of every CT series with a stored volume. Run it once after an "
        "upgrade: volumes stored before the field existed, or by older detection rules, "
        "otherwise keep no opening slice and show no Panoramic button. Safe to run twice."
    )

    def handle(self, *args, **options) -> None:
        checked = changed = skipped = 0
        stored = Series.objects.filter(modality="CT", volume__isnull=False).order_by("pk")
        for series in stored.iterator():
            layout = layouts.layout_for(series)
            arr = volumes.load(layout) if layout.kind == "volume" else None
            if arr is None:  # no current copy: the next preview or reformat stores one
                skipped += 1
                continue
            opening = volumes.opening_slice(layout, arr)
            checked += 1
            if opening != series.opening_slice:
                Series.objects.filter(pk=series.pk).update(opening_slice=opening)
                changed += 1
            mpr.forget(series)
        self.stdout.write(
            f"{checked} stored volumes checked, {changed} changed, "
            f"{skipped} without a current copy."
        )
