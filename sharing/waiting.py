"""What waits for the front desk, counted beside the menu: requests for a new link, files
sent through upload links. Patients are told "the practice will see your request"; without
a count on the menu, nobody looked until they happened to open the page."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from sharing.models import LinkRequest, ReceivedFile, ShareLink


@dataclass(frozen=True)
class Waiting:
    link_requests: int = 0
    received_files: int = 0


def _count(request: HttpRequest) -> Waiting:
    scope = getattr(request, "scope", None)
    if scope is None or scope.share is not None:
        return Waiting()
    studies = scope.studies()
    shares = ShareLink.objects.filter(
        Q(study__in=studies) | Q(source_study__in=studies), practice=scope.practice
    )
    return Waiting(
        link_requests=LinkRequest.objects.filter(share__in=shares, handled_at__isnull=True).count(),
        received_files=ReceivedFile.objects.filter(
            link__practice=scope.practice,
            link__patient__in=scope.patients(),
            state=ReceivedFile.State.PENDING,
        ).count(),
    )


def waiting_for_staff(request: HttpRequest) -> dict:
    """Context processor: counted only when a page shows the staff menu."""
    return {"waiting": SimpleLazyObject(lambda: _count(request))}
