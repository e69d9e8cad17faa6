"""The DICOM receiver: C-ECHO and C-STORE from the practices' devices (pynetdicom).

One listener serves every practice: the called AE title picks the practice, and only the
calling AE titles (and addresses) the practice lists get in; anything else is refused at
association with the reject reason that says which. A practice with a certificate also gets
its own DICOM TLS listener. Each association runs in its own thread.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from pydicom.dataset import Dataset
from pynetdicom import AE, PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION, evt
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification

from portal.dicomnet import lean, listener
from portal.dicomnet.intake import CANNOT_UNDERSTAND, OUT_OF_RESOURCES, Intake
from portal.dicomnet.refusals import Refusals
from portal.ingest.sniff import RENDERED_SYNTAXES, VIDEO_SYNTAXES
from portal.models import DicomNode, DicomPeer

logger = logging.getLogger(__name__)

# A-ASSOCIATE-RJ: result 1 (permanent), source 1 (service user), and the diagnostics of PS3.8.
REJECT_CALLING_AE = (0x01, 0x01, 0x03)
REJECT_CALLED_AE = (0x01, 0x01, 0x07)
# The sender's order decides: pynetdicom accepts the first proposal it supports, so originals
# arrive in the syntax they were made in, not converted to one this side prefers.
SYNTAXES = sorted(RENDERED_SYNTAXES | VIDEO_SYNTAXES)
ERROR_COMMENT_MAX = 64
# A connection must make its association request within this many seconds of opening.
NEGOTIATION_SECONDS = 30


@dataclass(frozen=True)
class Admission:
    """Who is sending on an association, once it was let in."""

    node: DicomNode
    peer: DicomPeer | None


def _address_matches(peer: DicomPeer, address: str | None) -> bool:
    if not peer.address:
        return True
    try:
        return address is not None and ipaddress.ip_address(address) == ipaddress.ip_address(
            peer.address
        )
    except ValueError:
        return False


def admit(called_ae: str, calling_ae: str, address: str | None, tls_node_pk: int | None):
    """Return an Admission, or the reject reason (result, source, diagnostic) and why."""
    node = DicomNode.objects.select_related("practice").filter(ae_title=called_ae).first()
    if node is None or (tls_node_pk is not None and node.pk != tls_node_pk):
        return None, REJECT_CALLED_AE, "unknown called AE title"
    if tls_node_pk is None and node.tls_client_ca:
        # Its senders must show a certificate: the plain port would let them skip it.
        return node, REJECT_CALLED_AE, "this receiver takes TLS connections only"
    peers = DicomPeer.objects.filter(practice=node.practice, ae_title=calling_ae, may_send=True)
    matching = [p for p in peers if _address_matches(p, address)]
    if not matching:
        reason = "address not allowed" if peers else "unknown calling AE title"
        return node, REJECT_CALLING_AE, reason
    # A device listed with its address wins over one allowed from anywhere.
    matching.sort(key=lambda p: not p.address)
    return Admission(node, matching[0]), None, ""


class Receiver:
    """Handlers and the listeners that share them."""

    def __init__(self) -> None:
        self._intakes: dict[int, Intake] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._open = 0  # intakes admitted and not yet filed
        self.refusals = Refusals()
        self.servers: list[Any] = []

    # -- association control ----------------------------------------------------------
    def on_requested(self, event: evt.Event, tls_node_pk: int | None = None) -> None:
        assoc = event.assoc
        rq = assoc.requestor.primitive
        called = rq.called_ae_title.strip()
        calling = rq.calling_ae_title.strip()
        address = assoc.requestor.address
        try:
            found, reject, reason = admit(called, calling, address, tls_node_pk)
            if reject is not None:
                self._refuse(assoc, reject, found, called, calling, address, reason)
                return
            intake = Intake(found.node, found.peer, calling, address)
            with self._lock:
                self._intakes[id(assoc)] = intake
                self._open += 1
        finally:
            connection.close()

    def _refuse(self, assoc, reject, node, called, calling, address, reason) -> None:
        assoc.acse.send_reject(*reject)
        # As pynetdicom's own rejections do: wait until the reject is on the wire before the
        # thread closes the socket, or a loaded machine could close it first.
        assoc.kill()
        self.refusals.refused(
            node.practice if node is not None else None, called, calling, address, reason
        )

    def on_ended(self, event: evt.Event) -> None:
        with self._lock:
            intake = self._intakes.pop(id(event.assoc), None)
        if intake is None:
            return
        try:
            intake.close()
        # One line for the operator, no traceback (it could carry values of the records).
        except Exception as exc:  # noqa: BLE001
            logger.error("dicom receiver: filing the received instances failed: %s",
                         type(exc).__name__)  # fmt: skip
        finally:
            connection.close()
            with self._idle:
                self._open -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 60) -> bool:
        """Wait until every admitted association's instances are filed; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._open == 0, timeout)

    # -- services -----------------------------------------------------------------------
    def on_echo(self, event: evt.Event) -> int:
        return 0x0000

    def on_store(self, event: evt.Event) -> Dataset:
        """A C-STORE that came pynetdicom's way (the fast path serves the others)."""
        status = Dataset()
        try:
            data = received_file(event)
        except Exception:  # noqa: BLE001 - any failure to read the request is the sender's
            data = None
        request = event.request
        code, comment = self._store(
            event.assoc,
            data,
            str(request.AffectedSOPClassUID or ""),
            str(request.AffectedSOPInstanceUID or ""),
        )
        status.Status = code
        if comment:
            status.ErrorComment = comment
        return status

    def on_fast_store(self, assoc, request: lean.StoreRequest, fragments: list) -> tuple[int, str]:  # noqa: ANN001
        """A C-STORE assembled in the thread that read it (portal.dicomnet.lean)."""
        try:
            head = lean.file_meta(
                request.sop_class,
                request.sop_instance,
                request.transfer_syntax,
                PYNETDICOM_IMPLEMENTATION_UID,
                PYNETDICOM_IMPLEMENTATION_VERSION,
            )
            data = b"".join([head, *fragments])
        except UnicodeError:
            data = None
        return self._store(assoc, data, request.sop_class, request.sop_instance)

    def _store(self, assoc, data: bytes | None, sop_class: str, sop_instance: str):  # noqa: ANN001, ANN202
        """Return the status and comment the sender is told; never raise."""
        intake = self._intakes.get(id(assoc))
        if intake is None:
            return OUT_OF_RESOURCES, "association not admitted"
        if data is None:
            return CANNOT_UNDERSTAND, "data set could not be read"
        try:
            result = intake.store(data, sop_class=sop_class, sop_instance=sop_instance)
        # The sender hears a failure it may retry; the log gets one line, no traceback.
        except Exception as exc:  # noqa: BLE001
            logger.error("dicom receiver: storing an instance failed: %s", type(exc).__name__)
            return OUT_OF_RESOURCES, "could not be stored, send again later"
        return result.status, result.comment[:ERROR_COMMENT_MAX]

    # -- listeners ----------------------------------------------------------------------
    def handlers(self, tls_node_pk: int | None = None) -> list:
        return [
            (evt.EVT_REQUESTED, self.on_requested, [tls_node_pk]),
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_C_STORE, self.on_store),
            (evt.EVT_RELEASED, self.on_ended),
            (evt.EVT_ABORTED, self.on_ended),
            (evt.EVT_CONN_CLOSE, self.on_ended),
        ]

    def start(self, host: str, port: int, tls_nodes: Iterable[DicomNode] = ()) -> list[Any]:
        """Start the plain listener and one TLS listener per node that has a certificate."""
        self.refusals.start()
        ae = make_ae()
        server = listener.start_server(
            ae, (host, port), store_handler=self.on_fast_store, evt_handlers=self.handlers()
        )
        self.servers.append(server)
        for node in tls_nodes:
            tls_ae = make_ae()
            server = listener.start_server(
                tls_ae,
                (host, node.tls_port),
                store_handler=self.on_fast_store,
                evt_handlers=self.handlers(node.pk),
                ssl_context=server_tls_context(node),
            )
            self.servers.append(server)
        return self.servers

    def stop(self, timeout: float = 60) -> None:
        """Stop listening, after the associations under way have been filed."""
        self.wait_idle(timeout)
        for server in self.servers:
            server.shutdown()
        self.refusals.stop()
        self.servers = []


def freeze_startup_heap() -> None:
    """Hide what is alive now (Django, pynetdicom, pydicom) from the garbage collector.

    A receiver lives for weeks and allocates thousands of objects per instance: every full
    collection would walk the few hundred thousand objects of the loaded apps again (in the
    benchmark, a sixth of the receiver's CPU went to the collector). Call once, at start.
    """
    gc.collect()
    gc.freeze()


def received_file(event: evt.Event) -> bytes:
    """Return the received instance as a file: preamble, File Meta Information, data set."""
    request = event.request
    stream = request.DataSet.getbuffer()
    try:
        head = lean.file_meta(
            str(request.AffectedSOPClassUID),
            str(request.AffectedSOPInstanceUID),
            str(event.context.transfer_syntax),
            PYNETDICOM_IMPLEMENTATION_UID,
            PYNETDICOM_IMPLEMENTATION_VERSION,
        )
    except UnicodeError:
        # A UID that is not ASCII: pydicom's writer decides what goes in the meta.
        return event.encoded_dataset(include_meta=True)
    return b"".join((head, stream))


def make_ae() -> AE:
    """Return an AE that accepts every storage SOP class in every syntax ingest takes."""
    ae = AE(ae_title="PORTAL")
    ae.maximum_associations = settings.PORTAL_DICOM_MAX_ASSOCIATIONS
    ae.maximum_pdu_size = 0
    ae.acse_timeout = NEGOTIATION_SECONDS
    ae.dimse_timeout = 60
    ae.network_timeout = 120
    # Called AE titles are checked per practice in on_requested.
    ae.require_called_aet = False
    ae.add_supported_context(Verification)
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, SYNTAXES)
    return ae


def server_tls_context(node: DicomNode) -> ssl.SSLContext:
    """Return the TLS context of a practice's listener (TLS 1.2+, its certificate)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(node.tls_certificate, node.tls_private_key)
    if node.tls_client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(node.tls_client_ca)
    return context
