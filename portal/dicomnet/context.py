"""What the study page shows of the DICOM network: where it came from, where it can go."""

from __future__ import annotations

from typing import Any

from portal.dicomnet.destinations import allowed
from portal.models import DicomPeer


def dicomnet_context(scope, study) -> dict[str, Any]:
    """Return the study's latest arrival, the practice's destinations and recent transfers."""
    return {
        "arrival": study.arrivals.select_related("peer").first(),
        "destinations": [
            peer
            for peer in DicomPeer.objects.filter(practice=scope.practice, port__isnull=False)
            if allowed(peer.address)
        ],
        "transfers": study.transfers.select_related("destination")[:5],
    }
