"""The receiver's listening sockets: pynetdicom's threaded server, fair to every address.

Each connection holds one of the receiver's association slots from the moment it is accepted,
before it has said who it is. One address may hold only its share of them, so that a
stranger's idle sockets (or a sender that leaks connections) cannot lock the practice's
devices out; a TLS handshake runs in the connection's own thread, not in the accept loop.
"""

from __future__ import annotations

import logging
import threading
import time

from pynetdicom.transport import ThreadedAssociationServer
from pynetdicom.utils import make_target

from portal.dicomnet.reactor import PromptRequestHandler

logger = logging.getLogger(__name__)

# Refusals of one address are logged at most this often (a flood must not flood the log).
LOG_EVERY_SECONDS = 60


class FairServer(ThreadedAssociationServer):
    """Refuses a connection from an address that already holds `per_address` of them."""

    per_address = 8

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        self._logged: dict[str, float] = {}
        super().__init__(*args, **kwargs)

    def get_request(self):  # noqa: ANN201
        client, address = self.socket.accept()
        if self.ssl_context:
            # The handshake waits for the peer: done on first read, in the connection's thread.
            client = self.ssl_context.wrap_socket(
                client, server_side=True, do_handshake_on_connect=False
            )
        return client, address

    def verify_request(self, request, client_address) -> bool:  # noqa: ANN001
        host = client_address[0]
        # Each accepted connection runs an association thread until it ends, admitted or not.
        held = sum(1 for a in self.active_associations if a.requestor.address == host)
        if held < self.per_address:
            return True
        now = time.monotonic()
        if now - self._logged.get(host, 0.0) >= LOG_EVERY_SECONDS:
            if len(self._logged) > 1000:  # many addresses: forget the old ones
                self._logged.clear()
            self._logged[host] = now
            logger.warning(
                "dicom receiver: refused connections from %s: it holds %d already", host, held
            )
        return False


def start_server(ae, address: tuple[str, int], store_handler=None, **kwargs):  # noqa: ANN001
    """Like AE.start_server(block=False), with prompt associations and a fair share each.

    store_handler(assoc, request, fragments) -> (status, comment), if given, serves C-STORE
    requests in the thread that reads them (portal.dicomnet.lean).
    """
    server = ae.make_server(
        address, server_class=FairServer, request_handler=PromptRequestHandler, **kwargs
    )
    server.per_address = max(1, ae.maximum_associations // 2)
    server.store_handler = store_handler
    thread = threading.Thread(
        target=make_target(server.serve_forever), name="DicomReceiver", daemon=True
    )
    thread.start()
    ae._servers.append(server)
    return server
