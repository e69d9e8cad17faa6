"""What a list of links shows staff: who, what it covers, who issued it, how long it may live."""

from __future__ import annotations

import math

from django.db.models import Count, Q
from django.utils import timezone

from sharing import services
from sharing.models import ShareLink


def links_in_scope(scope):  # noqa: ANN001, ANN201 - a Scope; a ShareLink queryset
    """The links of studies a staff member may see (a de-identified copy's, by its source)."""
    studies = scope.studies()
    return ShareLink.objects.filter(
        Q(study__in=studies) | Q(source_study__in=studies), practice=scope.practice
    )


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


# The extend form offers to move the expiry this many days later than it is now.
EXTEND_BY_DAYS = 7


def with_extend_limits(shares) -> list[ShareLink]:  # noqa: ANN001
    """Give each link the days it may still be extended by, as the extend form offers them.

    The form asks for the new expiry in days from now; its first value is a week past the
    current expiry (the practice's default length was offered, which for a new link is the
    expiry it already has: extending it changed nothing).
    """
    shares = list(shares)
    now = timezone.now()
    for share in shares:
        share.extend_max = services.extend_days_left(share)
        days_left = max(0, math.ceil((share.expires_at - now).total_seconds() / 86400))
        share.extend_default = min(days_left + EXTEND_BY_DAYS, share.extend_max)
    return shares
