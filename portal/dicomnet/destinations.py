"""Where send onward may connect.

A destination's address and port are typed by a practice admin, and the worker connects to
them. Loopback, link-local (a cloud's metadata service answers on 169.254.169.254, AWS's
also on fd00:ec2::254), shared address space (100.64/10, where Alibaba's answers),
multicast, unspecified and reserved addresses would let a practice reach, or time its way
through, services that are not its own: they are always refused. Private networks are
where practices' own PACS live, and where a hosted portal's database and cache live too:
there the operator lists the networks destinations must be in
(PORTAL_DICOM_DESTINATION_NETWORKS), loopback included when a tunnel to a specialist's PACS
listens on this host.
"""

from __future__ import annotations

import functools
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
    listed = [n.strip() for n in settings.PORTAL_DICOM_DESTINATION_NETWORKS if n.strip()]
    if listed:
        if any(ip.version == net.version and ip in net for net in _networks(tuple(listed))):
            return None
        return f"{REFUSED}: the operator allows destinations in {', '.join(listed)} only."
    if ip.is_loopback or ip.is_unspecified:
        return f"{REFUSED}: it is the portal's own host."
    if ip.is_link_local or ip.is_multicast or ip.is_reserved or _is_cloud_service(ip):
        return f"{REFUSED}: link-local, multicast and reserved addresses are not devices."
    return None


_CLOUD_SERVICES = (ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("fd00:ec2::/32"))


def _is_cloud_service(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(ip.version == net.version and ip in net for net in _CLOUD_SERVICES)


@functools.lru_cache(maxsize=8)
def _networks(listed: tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in listed]


def allowed(address: str | None) -> bool:
    return bool(address) and refusal(address) is None
