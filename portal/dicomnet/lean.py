"""C-STORE requests served in the thread that reads them, without pynetdicom's DIMSE layer.

Once an association is established, a C-STORE is a command set and a data set in P-DATA-TF
fragments, answered by a C-STORE-RSP. pynetdicom carries each fragment through its state
machine, hands the assembled message to the association's thread and the answer back, each
hand-over a wait for the GIL on a busy machine. Here the DUL thread that reads a C-STORE's
fragments assembles it, files it and answers, with no other thread involved. Everything
else (C-ECHO, release, abort, a closed connection, any other PDU or command) takes
pynetdicom's usual way, a whole message at a time, so negotiation, timeouts and endings are
pynetdicom's. A fragment that breaks the protocol (a context not accepted, a data set
before its command) aborts the association, as pynetdicom does on a PDU it cannot decode.
A C-STORE of a SOP class other than its presentation context's, or whose data set outgrows
the file size limit, is refused; its bytes are read and dropped as they arrive, never kept.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

P_DATA_TF = 0x04
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
NO_DATA_SET = 0x0101
COMMAND, LAST = 0x01, 0x02
# Refusals decided while the data set arrives; its bytes are read and dropped, then answered.
SOP_CLASS_NOT_SUPPORTED = 0x0122
CANNOT_UNDERSTAND = 0xC000
TOO_LARGE = "file is larger than allowed"


class ProtocolError(Exception):
    """The peer broke the upper layer protocol: the association is aborted."""


@dataclass
class StoreRequest:
    """What the receiver needs of one C-STORE request."""

    context_id: int
    message_id: int
    sop_class: str
    sop_instance: str
    transfer_syntax: str


# Answers (status, comment) for a received file: preamble, File Meta Information, data set.
StoreHandler = Callable[[StoreRequest, list], tuple[int, str]]


def _text(value: bytes | memoryview) -> str:
    return bytes(value).rstrip(b"\0 ").decode("ascii", "replace")


def parse_command(data: bytes) -> dict[int, bytes]:
    """Return the elements of an Implicit VR Little Endian command set by tag."""
    elements: dict[int, bytes] = {}
    offset, size = 0, len(data)
    while offset < size:
        if offset + 8 > size:
            raise ProtocolError("truncated command element")
        group, element, length = struct.unpack_from("<HHI", data, offset)
        offset += 8
        if offset + length > size:
            raise ProtocolError("truncated command value")
        elements[(group << 16) | element] = data[offset : offset + length]
        offset += length
    return elements


def _us(elements: dict[int, bytes], tag: int) -> int | None:
    value = elements.get(tag)
    return struct.unpack("<H", value)[0] if value is not None and len(value) == 2 else None


def _implicit(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def _even(raw: bytes, pad: bytes) -> bytes:
    return raw + pad if len(raw) % 2 else raw


def store_response(sop_class: str, message_id: int, status: int, comment: str, sop_instance: str):
    """Return a C-STORE-RSP command set, Implicit VR Little Endian, as pynetdicom encodes it."""
    body = [
        _implicit(0x00000002, _even(sop_class.encode("ascii"), b"\0")),
        _implicit(0x00000100, struct.pack("<H", C_STORE_RSP)),
        _implicit(0x00000120, struct.pack("<H", message_id)),
        _implicit(0x00000800, struct.pack("<H", NO_DATA_SET)),
        _implicit(0x00000900, struct.pack("<H", status)),
    ]
    if comment:
        body.append(_implicit(0x00000902, _even(comment.encode("ascii", "replace"), b" ")))
    body.append(_implicit(0x00001000, _even(sop_instance.encode("ascii"), b"\0")))
    encoded = b"".join(body)
    return _implicit(0x00000000, struct.pack("<I", len(encoded))) + encoded


def command_pdu(context_id: int, command: bytes) -> bytes:
    """Return a P-DATA-TF PDU carrying a whole command set in one fragment."""
    item = struct.pack(">IBB", len(command) + 2, context_id, COMMAND | LAST) + command
    return struct.pack(">BBI", P_DATA_TF, 0, len(item)) + item


def _element(tag: int, vr: bytes, value: bytes) -> bytes:
    group, elem = tag >> 16, tag & 0xFFFF
    if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
        return struct.pack("<HH2sHI", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def _uid(value: str) -> bytes:
    return _even(value.encode("ascii"), b"\0")


def file_meta(sop_class: str, sop_instance: str, syntax: str, impl_uid: str, impl_version: str):
    """Return preamble, 'DICM' and the File Meta Information pynetdicom would write.

    pydicom's writer validated and encoded these six elements for every C-STORE.
    """
    body = b"".join(
        (
            _element(0x00020001, b"OB", b"\x00\x01"),
            _element(0x00020002, b"UI", _uid(sop_class)),
            _element(0x00020003, b"UI", _uid(sop_instance)),
            _element(0x00020010, b"UI", _uid(syntax)),
            _element(0x00020012, b"UI", _uid(impl_uid)),
            _element(0x00020013, b"SH", _even(impl_version.encode("ascii"), b" "))
            if impl_version
            else b"",
        )
    )
    length = _element(0x00020000, b"UL", struct.pack("<I", len(body)))
    return b"\0" * 128 + b"DICM" + length + body


class Transfer:
    """The data transfer state of one association: which message is under way, and whose.

    feed() takes one P-DATA-TF PDU's bytes and returns what it could not serve itself: the
    raw PDUs of a message for pynetdicom (in order), and the answers to send, as PDU bytes.
    """

    def __init__(
        self,
        syntaxes: dict[int, str],
        handler: StoreHandler,
        *,
        abstract: dict[int, str] | None = None,
        max_bytes: int = 0,
    ) -> None:
        self.syntaxes = syntaxes  # accepted presentation context ID -> transfer syntax
        self.abstract = abstract or {}  # ... -> its SOP class (abstract syntax)
        self.handler = handler
        self.max_bytes = max_bytes  # the most a data set may hold (0: no limit)
        self._reset()

    def _reset(self) -> None:
        self.owner = ""  # "", "lean" (a C-STORE served here) or "usual" (pynetdicom's)
        self.command = bytearray()
        self.held: list[bytes] = []  # raw PDUs of a command not yet decided
        self.fragments: list[memoryview] = []
        self.size = 0  # bytes of the data set so far
        self.refusal: tuple[int, str] | None = None  # decided before the data set ended
        self.request: StoreRequest | None = None

    def feed(self, pdu: bytes) -> tuple[list[bytes], list[bytes]]:
        usual: list[bytes] = []
        answers: list[bytes] = []
        view = memoryview(pdu)
        if self.owner == "usual":
            usual.append(pdu)
        elif self.owner == "":
            self.held.append(pdu)
        given = self.owner == "usual"  # this PDU goes to pynetdicom whatever it holds
        offset, size = 6, len(view)
        while offset < size:
            if offset + 6 > size:
                raise ProtocolError("truncated presentation data value item")
            length, context_id, header = struct.unpack_from(">IBB", view, offset)
            if length < 2 or offset + 4 + length > size:
                raise ProtocolError("bad presentation data value item length")
            value = view[offset + 6 : offset + 4 + length]
            offset += 4 + length
            if context_id not in self.syntaxes:
                raise ProtocolError("presentation context not accepted")
            if self.owner == "" and given:
                self.owner = "usual"  # a message starting in a PDU pynetdicom already has
            answer = self._fragment(context_id, header, value, pdu, usual)
            if answer is not None:
                answers.append(answer)
            given = given or (bool(usual) and usual[-1] is pdu)
        return usual, answers

    def _fragment(self, context_id, header, value, pdu, usual) -> bytes | None:  # noqa: ANN001
        is_command, is_last = bool(header & COMMAND), bool(header & LAST)
        if self.owner == "usual":
            if not is_command:
                # pynetdicom keeps a message whole in memory: held to the same limit.
                self.size += len(value)
                if self.max_bytes and self.size > self.max_bytes:
                    raise ProtocolError("data set larger than the file size limit")
            if is_last and (not is_command or self._no_data_set):
                self._reset()  # the message ends in this PDU, which went on whole
            return None
        if is_command:
            if self.owner == "lean" or self.fragments:
                raise ProtocolError("command fragment inside a data set")
            self.command += value
            if is_last:
                self._decide(context_id, usual)
            return None
        if self.owner != "lean" or self.request is None:
            raise ProtocolError("data set fragment before its command")
        if context_id != self.request.context_id:
            raise ProtocolError("data set fragment on another presentation context")
        self.size += len(value)
        if self.max_bytes and self.size > self.max_bytes and self.refusal is None:
            self.refusal = (CANNOT_UNDERSTAND, TOO_LARGE)
        if self.refusal is None:
            self.fragments.append(value)
        else:
            self.fragments = []  # what arrives of a refused data set is dropped
        if not is_last:
            return None
        request, fragments, refusal = self.request, self.fragments, self.refusal
        self._reset()
        status, comment = refusal or self.handler(request, fragments)
        command = store_response(
            request.sop_class, request.message_id, status, comment, request.sop_instance
        )
        return command_pdu(request.context_id, command)

    def _decide(self, context_id: int, usual: list[bytes]) -> None:
        elements = parse_command(bytes(self.command))
        field = _us(elements, 0x00000100)
        data_set = _us(elements, 0x00000800)
        message_id = _us(elements, 0x00000110)
        self._no_data_set = data_set == NO_DATA_SET
        if field == C_STORE_RQ and not self._no_data_set and message_id is None:
            raise ProtocolError("C-STORE without a message ID")
        if field == C_STORE_RQ and not self._no_data_set:
            self.owner = "lean"
            self.request = StoreRequest(
                context_id,
                message_id,
                _text(elements.get(0x00000002, b"")),
                _text(elements.get(0x00001000, b"")),
                self.syntaxes[context_id],
            )
            accepted = self.abstract.get(context_id)
            if accepted and self.request.sop_class != accepted:
                self.refusal = (SOP_CLASS_NOT_SUPPORTED, "SOP class not accepted on this context")
            self.held = []
            return
        # Anything else goes to pynetdicom whole: the PDUs held so far, then the rest.
        self.owner = "usual"
        usual.extend(self.held)
        self.held = []
        if self._no_data_set:
            self._reset()

    _no_data_set = False
