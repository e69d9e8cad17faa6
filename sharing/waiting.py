"""What waits for the front desk, counted beside the menu: requests for a new link, files
sent through upload links. Patients are told "the practice will see your request"; without
a count on the menu, nobody looked until they happened to open the page."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from sharing.link_list import links_in_scope
from sharing.models import LinkRequest, ReceivedFile
from sharing.uploads.services import upload_links_in_scope


@dataclass(frozen=True)
class Waiting:
    link_requests: int = 0
    received_files: int = 0


def _count(request: HttpRequest) -> Waiting:
    scope = getattr(request, "scope", None)
    if scope is None or scope.share is not None:
        return Waiting()
    # The same links the Links and Received pages list, so the counts never disagree.
    requests = LinkRequest.objects.filter(share__in=links_in_scope(scope), handled_at__isnull=True)
    files = ReceivedFile.objects.filter(
        link__in=upload_links_in_scope(scope), state=ReceivedFile.State.PENDING
    )
    return Waiting(link_requests=requests.count(), received_files=files.count())


def waiting_for_staff(request: HttpRequest) -> dict:
    """Context processor: counted only when a page shows the staff menu."""
    return {"waiting": SimpleLazyObject(lambda: _count(request))}
