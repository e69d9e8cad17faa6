"""Where send onward may connect: never to the portal's own host or its cloud's services.

A destination's address and port are typed by a practice admin, and the worker connects to
them. Loopback, link-local (a cloud's metadata service answers on 169.254.169.254),
multicast, unspecified and reserved addresses would let a practice reach, or time its way
through, services that are not its own. The operator may instead list the networks that
destinations must be in (PORTAL_DICOM_DESTINATION_NETWORKS), loopback included when a
tunnel to a specialist's PACS listens on this host.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings

REFUSED = "This address is not allowed as a destination on this portal"


def refusal(address: str) -> str | None:
    """Return why a destination at this IP address is refused, or None if it is allowed."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"{REFUSED} (not an IP address)."
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    listed = settings.PORTAL_DICOM_DESTINATION_NETWORKS
    if listed:
        networks = [ipaddress.ip_network(n, strict=False) for n in listed]
        if any(ip.version == net.version and ip in net for net in networks):
            return None
        return f"{REFUSED}: the operator allows destinations in {', '.join(listed)} only."
    if ip.is_loopback or ip.is_unspecified:
        return f"{REFUSED}: it is the portal's own host."
    if ip.is_link_local or ip.is_multicast or ip.is_reserved:
        return f"{REFUSED}: link-local, multicast and reserved addresses are not devices."
    return None


def allowed(address: str | None) -> bool:
    return bool(address) and refusal(address) is None
