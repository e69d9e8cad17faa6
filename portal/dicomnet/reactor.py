"""pynetdicom's association machinery, woken by work instead of polling every millisecond.

pynetdicom 3.0 runs two loops per association: the DUL thread sleeps 1 ms whenever it has
nothing to do, and the association thread sleeps 1 ms before each look for a complete
message. A sender waiting for each C-STORE answer loses up to three of those sleeps per
instance, and more on a loaded machine, where a 1 ms sleep often lasts several. Here both
loops wait on what they serve instead: the DUL thread on the socket and on a wake-up
socket that the queues it reads ring; the association thread on an event the DUL's
queues set. The loop bodies are pynetdicom 3.0.4's (pinned), with only the waits changed.
"""

from __future__ import annotations

import queue
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import connections
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import AssociationSocket, RequestHandler

from portal.dicomnet import lean

# Timers (ARTIM, the network timeout) and kill requests are still looked at this often.
IDLE_WAIT = 0.05
# A PDU is read into a buffer that starts this big and doubles as its bytes arrive.
RECV_STEP = 2**20
# The most any PDU may hold before the association is accepted, and any but P-DATA after. An
# association request proposing all 128 contexts, each in a dozen syntaxes, is about 100 KiB;
# a bigger one is refused unread, before it is buffered or decoded. A P-DATA PDU may hold a
# whole data set up to the file size limit, and no more.
MAX_CONTROL_PDU = 256 * 2**10


def store_limit() -> int:
    """The most a received data set may hold: the file size limit (its meta is extra)."""
    return settings.PORTAL_MAX_FILE_BYTES


class _WakingQueue(queue.Queue):
    """A queue that calls wake() after each put, so its reader need not poll."""

    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__()
        self._wake = wake

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._wake()


class PromptDUL(DULServiceProvider):
    """The DUL thread, waiting on its socket and queues instead of sleeping."""

    def __init__(self, assoc: Association) -> None:
        super().__init__(assoc)
        self._bell, self._ringer = socket.socketpair()
        self._bell.setblocking(False)
        self._ringer.setblocking(False)
        self.event_queue = _WakingQueue(self.ring)
        self.to_provider_queue = _WakingQueue(self.ring)
        self._transfer: lean.Transfer | None = None
        # A connection has this long to make its association request, however it trickles in.
        self._negotiate_by = time.monotonic() + (assoc.acse_timeout or 30)

    def ring(self) -> None:
        try:
            self._ringer.send(b"\0")
        except OSError:
            pass  # closed (the loop ended) or already full of rings: either way it wakes

    def kill_dul(self) -> None:
        super().kill_dul()
        self.ring()

    def _wait(self) -> None:
        sock = getattr(self.socket, "socket", None)
        if sock is None or not getattr(self.socket, "_is_connected", False):
            time.sleep(self._run_loop_delay)
            return
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return
        try:
            select.select([sock, self._bell], [], [], IDLE_WAIT)
        except (OSError, ValueError):
            return  # the socket closed: the next look at it says so
        try:
            while self._bell.recv(4096):
                pass
        except OSError:
            pass

    def _lean(self) -> lean.Transfer | None:
        """The association's C-STORE fast path, once it is established and if it has one."""
        if self._transfer is None:
            handler = getattr(self.assoc, "store_handler", None)
            if handler is None or self.state_machine.current_state != "Sta6":
                return None
            contexts = self.assoc.accepted_contexts
            self._transfer = lean.Transfer(
                {cx.context_id: str(cx.transfer_syntax[0]) for cx in contexts},
                handler,
                abstract={cx.context_id: str(cx.abstract_syntax) for cx in contexts},
                max_bytes=store_limit(),
            )
        return self._transfer

    def _read_pdu_data(self) -> None:
        """Read one PDU, within the time the association's state allows, and hand it on.

        Before the association is accepted the whole request must arrive by the negotiation
        deadline (a stranger's half-sent request must not hold a connection slot); after,
        the network timeout bounds each wait for bytes. Only P-DATA may be large.
        """
        transfer = self._lean()
        negotiating = self.state_machine.current_state in ("Sta1", "Sta2", "Sta3")
        if negotiating:
            self.socket.read_within(None, self._negotiate_by)
        else:
            self.socket.read_within(self.assoc.network_timeout, None)
        try:
            head = self.socket.recv(6)
            if len(head) < 6:
                raise EOFError
            pdu_type, _, length = struct.unpack(">BBL", head)
            if pdu_type not in range(0x01, 0x08):
                self.event_queue.put("Evt19")
                return
            if length > (MAX_CONTROL_PDU if negotiating or pdu_type != lean.P_DATA_TF
                         else MAX_CONTROL_PDU + store_limit()):  # fmt: skip
                raise EOFError  # closed unread: no real peer sends one so large
            head += self.socket.recv(length)
            if len(head) != 6 + length:
                raise EOFError
        except (OSError, TimeoutError, EOFError):
            self.socket.close()
            self.event_queue.put("Evt17")  # as pynetdicom: the connection closed mid-PDU
            return
        pdu = bytes(head)
        if transfer is None or pdu_type != lean.P_DATA_TF:
            self._usual(pdu)
            return
        try:
            usual, answers = transfer.feed(pdu)
        except lean.ProtocolError:
            self._transfer = None
            self.event_queue.put("Evt19")  # an invalid PDU: the state machine aborts
            return
        for raw in usual:
            self._usual(raw)
        for answer in answers:
            self.socket.send(answer)

    def _usual(self, raw: bytes) -> None:
        """Hand one received PDU to pynetdicom's state machine, as its own reader does."""
        try:
            pdu, event = self._decode_pdu(bytearray(raw))
        except Exception:  # noqa: BLE001 - as pynetdicom: an undecodable PDU is Evt19
            self.event_queue.put("Evt19")
            return
        self.event_queue.put(event)
        self._recv_pdu.put(pdu)

    def run_reactor(self) -> None:
        try:
            self._run()
        finally:
            if self._transfer is not None:
                # Instances were filed from this thread: its database connection goes with it.
                connections.close_all()
            self._bell.close()
            self._ringer.close()
            wake = getattr(self.assoc, "wake", None)
            if wake is not None:
                wake()

    def _run(self) -> None:
        # pynetdicom 3.0.4's DULServiceProvider.run_reactor with the sleep made a wait.
        self._idle_timer.start()
        idle = False
        while True:
            if not self.assoc._dul_ready.is_set():
                self.assoc._dul_ready.set()
                idle = True
            if idle:
                self._wait()
            if self._kill_thread:
                break
            if self.artim_timer.expired:
                self.event_queue.put("Evt18")
            try:
                if self._process_recv_primitive():
                    pass
                elif self._is_transport_event():
                    self._idle_timer.restart()
            except Exception:  # noqa: BLE001 - as pynetdicom: abort, never leave a half state
                abort_pdu = A_ABORT_RQ()
                abort_pdu.source = 0x02
                abort_pdu.reason_diagnostic = 0x00
                self.socket.send(abort_pdu.encode())
                self.assoc.is_aborted = True
                self.assoc.is_established = False
                self.assoc._kill = True
                self._kill_thread = True
                return
            try:
                event = self.event_queue.get(block=False)
            except queue.Empty:
                idle = True
                continue
            self.state_machine.do_action(event)
            idle = False


def store_response(rsp: C_STORE) -> bytes | None:
    """Return a C-STORE-RSP command set as pynetdicom would encode it, or None.

    pynetdicom encodes each answer twice through pydicom's writer (once to measure the
    group length). None for anything this does not cover (an Offending Element).
    """
    if rsp.OffendingElement is not None or rsp.MessageIDBeingRespondedTo is None:
        return None
    return lean.store_response(
        str(rsp.AffectedSOPClassUID or ""),
        rsp.MessageIDBeingRespondedTo,
        rsp.Status,
        rsp.ErrorComment or "",
        str(rsp.AffectedSOPInstanceUID or ""),
    )


class PromptDIMSE(DIMSEServiceProvider):
    """Sends C-STORE answers encoded directly; everything else as pynetdicom does."""

    def send_msg(self, primitive, context_id: int) -> None:  # noqa: ANN001
        command = None
        if isinstance(primitive, C_STORE) and primitive.Status is not None:
            try:
                command = store_response(primitive)
            except (UnicodeError, struct.error):
                command = None
        limit = self.maximum_pdu_size
        if command is None or (limit and len(command) + 12 > limit):
            super().send_msg(primitive, context_id)
            return
        pdata = P_DATA()
        # Message control header 0x03: a command fragment, and its last.
        pdata.presentation_data_value_list = [[context_id, b"\x03" + command]]
        self.dul.send_pdu(pdata)


class PromptAssociation(Association):
    """An acceptor association whose reactor wakes when a message or a primitive arrives."""

    def __init__(self, ae, mode: str) -> None:  # noqa: ANN001
        self._bell = threading.Event()
        super().__init__(ae, mode)
        self.dul = PromptDUL(self)
        self.dimse = PromptDIMSE(self)
        self.dul.to_user_queue = _WakingQueue(self.wake)
        self.dimse.msg_queue = _WakingQueue(self.wake)

    def wake(self) -> None:
        self._bell.set()

    def kill(self) -> None:
        self.wake()
        super().kill()

    def _run_reactor(self) -> None:
        # pynetdicom 3.0.4's Association._run_reactor with the 1 ms sleep made a wait.
        self._is_paused = False
        while not self._kill:
            self._bell.wait(IDLE_WAIT)
            self._bell.clear()
            self._is_paused = True
            self._reactor_checkpoint.wait()
            self._is_paused = False
            context_id, msg = self.dimse.get_msg(block=False)
            if msg:
                self._serve_request(msg, context_id)
                self.wake()  # another message may be queued behind this one
            if self.is_established and self.acse.is_release_requested():
                self.acse.send_release(is_response=True)
                self.is_released = True
                self.is_established = False
                evt.trigger(self, evt.EVT_RELEASED, {})
                self.kill()
                return
            if self.acse.is_aborted():
                self.dul.receive_pdu(wait=False)
                self.is_aborted = True
                self.is_established = False
                evt.trigger(self, evt.EVT_ABORTED, {})
                self.kill()
                return
            if not self.dul.is_alive():
                self.kill()
                return
            if self.dul.idle_timer_expired():
                if self.network_timeout_response == "A-RELEASE":
                    self._is_paused = True
                    self._reactor_checkpoint.wait()
                    self.release()
                    self._is_paused = False
                else:
                    self.abort()
                self.kill()
                return


class PromptSocket(AssociationSocket):
    """Reads a PDU in as few calls as the network allows (pynetdicom reads 4 KiB at a time).

    Each read gives up the GIL and must win it back from the thread filing the previous
    instance: 130 reads for one CT slice were 130 chances to wait.
    """

    _wait_limit: float | None = None
    _deadline: float | None = None

    def read_within(self, wait: float | None, deadline: float | None) -> None:
        """Bound the next reads: each wait for bytes to `wait` seconds, all of them together
        to the monotonic `deadline` (None: no bound)."""
        self._wait_limit, self._deadline = wait, deadline
        if self.socket is not None and deadline is None:
            self.socket.settimeout(wait)

    def _arm(self) -> None:
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("deadline passed")
            self.socket.settimeout(left)

    def recv(self, nr_bytes: int) -> bytearray:
        # The buffer grows with what arrives, a step at a time: a PDU header declaring 4 GiB
        # from a stranger who then sends nothing must not take 4 GiB.
        buffer = bytearray(min(nr_bytes, RECV_STEP))
        got = 0
        while got < nr_bytes:
            if got == len(buffer):
                buffer.extend(bytes(min(nr_bytes - got, len(buffer))))
            self._arm()
            with memoryview(buffer) as view:
                n = self.socket.recv_into(view[got:], len(buffer) - got)
            if not n:
                break  # connection closed: the caller sees the short read
            got += n
        if got < len(buffer):
            del buffer[got:]
        return buffer


class PromptRequestHandler(RequestHandler):
    """Makes a PromptAssociation for each connection (pynetdicom 3.0.4's, otherwise)."""

    def _create_association(self) -> Association:
        assoc = PromptAssociation(self.ae, "acceptor")
        assoc._server = self.server
        timestamp = datetime.strftime(datetime.now(), "%Y%m%d%H%M%S")
        assoc.name = f"AcceptorThread@{timestamp}"
        assoc.set_socket(PromptSocket(assoc, client_socket=self.request))
        assoc.acceptor.maximum_length = self.ae.maximum_pdu_size
        assoc.acceptor.ae_title = self.server.ae_title
        assoc.acceptor.address_info = self.local
        assoc.acceptor.implementation_class_uid = self.ae.implementation_class_uid
        assoc.acceptor.implementation_version_name = self.ae.implementation_version_name
        # Negotiation only reads the supported contexts; pynetdicom's deep copy of all storage
        # classes in every syntax took tens of milliseconds of every association.
        assoc.acceptor.supported_contexts = list(self.server.contexts)
        assoc.requestor.address_info = self.remote
        handler = getattr(self.server, "store_handler", None)
        if handler is not None:
            assoc.store_handler = partial(handler, assoc)
        for event, bound in self.server._handlers.items():
            if event.is_intervention and bound:
                assoc.bind(event, *bound)
            elif isinstance(event, evt.NotificationEvent):
                for handler, args in bound:
                    assoc.bind(event, handler, args)
        return assoc
