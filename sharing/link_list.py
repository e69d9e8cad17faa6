"""What a list of links shows staff: who, what it covers, who issued it, how long it may live."""

from __future__ import annotations

from django.db.models import Count

from sharing import services
from sharing.models import ShareLink


def annotate_for_list(shares):  # noqa: ANN001, ANN201 - a ShareLink queryset
    """Add what the list of links shows: who, what it covers, who issued it."""
    return (
        shares.select_related(
            "patient", "study", "source_study", "source_patient", "created_by", "practice"
        )
        .annotate(
            series_chosen=Count("series", distinct=True),
            attachments_chosen=Count("attachments", distinct=True),
        )
        .order_by("-created_at", "-pk")
    )


def with_extend_limits(shares) -> list[ShareLink]:  # noqa: ANN001
    """Give each link the days it may still be extended by, as the extend form offers them."""
    shares = list(shares)
    for share in shares:
        share.extend_max = services.extend_days_left(share)
        share.extend_default = min(share.practice.share_default_days, share.extend_max)
    return shares
