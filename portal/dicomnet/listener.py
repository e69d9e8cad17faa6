"""The receiver's listening sockets: pynetdicom's threaded server, fair to every address.

Each connection holds one of the receiver's association slots from the moment it is accepted,
before it has said who it is. One address may hold only its share of them, and addresses no
device is listed with may hold only half of them all, so that strangers' sockets (from one
address or from many) or a sender that leaks connections cannot lock the practice's devices
out; a TLS handshake runs in the connection's own thread, not in the accept loop.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time

from django.db import DatabaseError
from pynetdicom.transport import ThreadedAssociationServer
from pynetdicom.utils import make_target

from portal.dicomnet.reactor import PromptRequestHandler

logger = logging.getLogger(__name__)

# Refusals of one address are logged at most this often (a flood must not flood the log).
LOG_EVERY_SECONDS = 60


# Devices' addresses are read again from the database at most this often.
KNOWN_ADDRESSES_SECONDS = 30


def known_addresses() -> frozenset[str]:
    """Return the addresses devices are listed with (in any practice), normalised."""
    from django.db import connection

    from portal.models import DicomPeer

    try:
        listed = DicomPeer.objects.filter(address__isnull=False).values_list("address", flat=True)
        return frozenset(_normal(raw) for raw in listed)
    finally:
        connection.close()  # the accept loop's thread keeps no connection open


class FairServer(ThreadedAssociationServer):
    """Refuses a connection from an address that already holds `per_address` of them, and
    one from an address no device is listed with once strangers hold `for_strangers`."""

    per_address = 8
    for_strangers = 8

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        self._logged: dict[str, float] = {}
        self._known: frozenset[str] = frozenset()
        self._known_at = time.monotonic()
        self._refreshing = threading.Lock()
        super().__init__(*args, **kwargs)

    def refresh_known(self) -> None:
        """Read the devices' addresses again; on a database error keep the last list."""
        try:
            self._known = known_addresses()
        except DatabaseError:
            logger.warning("dicom receiver: the devices' addresses could not be read")
        finally:
            self._known_at = time.monotonic()

    def _known_addresses(self) -> frozenset[str]:
        # Read again in a thread of its own: a database that hangs must not stall accepting.
        stale = time.monotonic() - self._known_at >= KNOWN_ADDRESSES_SECONDS
        if stale and self._refreshing.acquire(blocking=False):

            def refresh() -> None:
                try:
                    self.refresh_known()
                finally:
                    self._refreshing.release()

            threading.Thread(target=refresh, name="DicomKnownAddresses", daemon=True).start()
        return self._known

    def get_request(self):  # noqa: ANN201
        client, address = self.socket.accept()
        if self.ssl_context:
            # The handshake waits for the peer: done on first read, in the connection's thread.
            client = self.ssl_context.wrap_socket(
                client, server_side=True, do_handshake_on_connect=False
            )
        return client, address

    def verify_request(self, request, client_address) -> bool:  # noqa: ANN001
        host = _normal(client_address[0])
        # Each accepted connection runs an association thread until it ends, admitted or not.
        addresses = [_normal(a.requestor.address) for a in self.active_associations]
        held = addresses.count(host)
        if held >= self.per_address:
            self._log_refusal(host, f"it holds {held} already")
            return False
        known = self._known_addresses()
        if host not in known:
            strangers = sum(1 for a in addresses if a not in known)
            if strangers >= self.for_strangers:
                self._log_refusal(host, f"addresses no device is listed with hold {strangers}")
                return False
        return True

    def _log_refusal(self, host: str, why: str) -> None:
        now = time.monotonic()
        if now - self._logged.get(host, 0.0) >= LOG_EVERY_SECONDS:
            if len(self._logged) > 1000:  # many addresses: forget the old ones
                self._logged.clear()
            self._logged[host] = now
            logger.warning("dicom receiver: refused connections from %s: %s", host, why)


def _normal(address: str | None) -> str:
    """Return an address as one spelling (an IPv4 address mapped into IPv6 as IPv4)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or ""
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


def start_server(ae, address: tuple[str, int], store_handler=None, **kwargs):  # noqa: ANN001
    """Like AE.start_server(block=False), with prompt associations and a fair share each.

    store_handler(assoc, request, fragments) -> (status, comment), if given, serves C-STORE
    requests in the thread that reads them (portal.dicomnet.lean).
    """
    server = ae.make_server(
        address, server_class=FairServer, request_handler=PromptRequestHandler, **kwargs
    )
    server.per_address = max(1, ae.maximum_associations // 2)
    server.for_strangers = max(1, ae.maximum_associations // 2)
    server.refresh_known()
    server.store_handler = store_handler
    thread = threading.Thread(
        target=make_target(server.serve_forever), name="DicomReceiver", daemon=True
    )
    thread.start()
    ae._servers.append(server)
    return server
