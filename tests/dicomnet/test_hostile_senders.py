"""What a device allowed to send can still get wrong, or try: every C-STORE is held to the
association's terms (its presentation context, its command) and to the file size limit while
its bytes arrive, not after they were all kept in memory."""

from __future__ import annotations

import struct
import tempfile
import time
from pathlib import Path

import pydicom
from django.test import SimpleTestCase, TransactionTestCase, override_settings
from pydicom.uid import CTImageStorage, generate_uid

from portal.dicomnet import lean
from portal.models import Instance, Practice
from tests.dicomnet.helpers import configure, receiving
from tests.dicomnet.test_receiver import encoded_c_store, phantom, scu

SOP_CLASS_NOT_SUPPORTED = 0x0122


def _answer_status(sock, timeout: float = 20) -> int:
    """Read PDUs until a C-STORE-RSP arrives; return its status."""
    sock.settimeout(timeout)
    buffer = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while len(buffer) >= 6:
            pdu_type, _, length = struct.unpack(">BBI", buffer[:6])
            if len(buffer) < 6 + length:
                break
            pdu, buffer = buffer[: 6 + length], buffer[6 + length :]
            if pdu_type == 0x04:
                command = lean.parse_command(pdu[12:])
                if lean._us(command, 0x00000100) == lean.C_STORE_RSP:
                    return lean._us(command, 0x00000900)
            if pdu_type == 0x07:
                return -1  # aborted
        chunk = sock.recv(65536)
        if not chunk:
            return -2  # closed
        buffer += chunk
    raise AssertionError("no answer")


class AssociationTermsTestCase(TransactionTestCase):
    def setUp(self) -> None:
        self.practice = Practice.objects.create(slug="smile", name="Smile Dental")
        configure(self.practice)
        self.files = phantom(Path(tempfile.mkdtemp(prefix="dicomnet-senders-")) / "cbct")

    def _association(self, port: int):
        """An association whose socket the test reads itself: the sender's own reader is held
        (two readers raced for the answer, and the test waited for one its sender took)."""
        assoc = scu().associate("127.0.0.1", port, ae_title="SMILEPACS")
        self.assertTrue(assoc.is_established)
        assoc.dul._is_transport_event = lambda: False
        time.sleep(0.05)  # a look at the socket under way ends first
        return assoc, assoc.dul.socket.socket

    def _sender_reads_again(self, assoc) -> None:  # noqa: ANN001
        del assoc.dul._is_transport_event

    def test_a_c_store_on_a_context_of_another_sop_class_is_refused(self) -> None:
        # The CT image on the context accepted for Verification (or for any other class):
        # refused, as a class the association never accepted for it.
        with receiving() as port:
            assoc, sock = self._association(port)
            echo = next(
                cx.context_id
                for cx in assoc.accepted_contexts
                if cx.abstract_syntax != CTImageStorage
            )
            for pdu in encoded_c_store(assoc, self.files[0], context_id=echo):
                sock.sendall(pdu)
            status = _answer_status(sock)
            self._sender_reads_again(assoc)
            assoc.abort()
        self.assertEqual(status, SOP_CLASS_NOT_SUPPORTED)
        self.assertFalse(Instance.objects.exists())

    def test_a_data_set_whose_instance_uid_differs_from_the_commands_is_refused(self) -> None:
        # Filed under the data set's UID, a success naming the command's would let the sender
        # purge an instance the portal holds under another name.
        with receiving() as port:
            assoc, sock = self._association(port)
            for pdu in encoded_c_store(assoc, self.files[0], sop_instance=generate_uid()):
                sock.sendall(pdu)
            status = _answer_status(sock)
            self._sender_reads_again(assoc)
            matching = assoc.send_c_store(pydicom.dcmread(self.files[1])).Status
            assoc.release()
        self.assertEqual(status & 0xF000, 0xC000)
        self.assertEqual(matching, 0x0000)
        self.assertEqual(Instance.objects.count(), 1)

    def test_a_refused_instance_sent_again_correctly_is_stored(self) -> None:
        # Refused first (its command named another instance), then sent as it should be, in
        # the same association: the success it hears must mean it is on record.
        with receiving() as port:
            assoc, sock = self._association(port)
            for pdu in encoded_c_store(assoc, self.files[0], sop_instance=generate_uid()):
                sock.sendall(pdu)
            refused = _answer_status(sock)
            self._sender_reads_again(assoc)
            again = assoc.send_c_store(pydicom.dcmread(self.files[0])).Status
            assoc.release()
        self.assertEqual((refused & 0xF000, again), (0xC000, 0x0000))
        uid = pydicom.dcmread(self.files[0]).SOPInstanceUID
        self.assertTrue(Instance.objects.filter(sop_instance_uid=uid).exists())


class FileLimitWhileArrivingTestCase(SimpleTestCase):
    """lean.Transfer keeps no more of a data set than the file limit allows."""

    def test_a_data_set_over_the_limit_is_refused_and_not_kept(self) -> None:
        answered = []

        def handler(request, fragments):  # noqa: ANN001, ANN202
            answered.append(sum(len(f) for f in fragments))
            return 0x0000, ""

        transfer = lean.Transfer(
            {1: "1.2.840.10008.1.2.1"}, handler, abstract={1: CTImageStorage}, max_bytes=1_000_000
        )
        command = _store_command(CTImageStorage, "1.2.3.4")
        _, answers = transfer.feed(_pdu(1, 0x03, command))
        chunk = b"\0" * 65536
        kept = []
        for _ in range(40):  # 2.6 MB
            _, answers = transfer.feed(_pdu(1, 0x00, chunk))
            kept.append(sum(len(f) for f in transfer.fragments))
        _, answers = transfer.feed(_pdu(1, 0x02, chunk))
        self.assertLessEqual(max(kept), 1_000_000)
        self.assertEqual(answered, [], "the handler saw a data set over the limit")
        status = lean._us(lean.parse_command(answers[0][12:]), 0x00000900)
        self.assertEqual(status, 0xC000)

    @override_settings(PORTAL_MAX_FILE_BYTES=1_000_000)
    def test_the_receiver_takes_its_limit_from_the_settings(self) -> None:
        from portal.dicomnet.reactor import store_limit

        self.assertEqual(store_limit(), 1_000_000)


def _store_command(sop_class: str, sop_instance: str) -> bytes:
    body = b"".join(
        (
            lean._implicit(0x00000002, lean._even(sop_class.encode(), b"\0")),
            lean._implicit(0x00000100, struct.pack("<H", lean.C_STORE_RQ)),
            lean._implicit(0x00000110, struct.pack("<H", 7)),
            lean._implicit(0x00000700, struct.pack("<H", 2)),
            lean._implicit(0x00000800, struct.pack("<H", 0x0000)),
            lean._implicit(0x00001000, lean._even(sop_instance.encode(), b"\0")),
        )
    )
    return lean._implicit(0x00000000, struct.pack("<I", len(body))) + body


def _pdu(context_id: int, header: int, value: bytes) -> bytes:
    item = struct.pack(">IBB", len(value) + 2, context_id, header) + value
    return struct.pack(">BBI", lean.P_DATA_TF, 0, len(item)) + item


class HandedOnMessagesTestCase(SimpleTestCase):
    """What goes pynetdicom's way (it keeps a message whole) is held to the limit too."""

    def test_a_c_store_without_a_message_id_aborts(self) -> None:
        transfer = lean.Transfer({1: "1.2.840.10008.1.2.1"}, lambda r, f: (0, ""), max_bytes=10)
        command = _store_command(CTImageStorage, "1.2.3.4").replace(
            lean._implicit(0x00000110, struct.pack("<H", 7)), b""
        )
        command = lean._implicit(0x00000000, struct.pack("<I", len(command) - 12)) + command[12:]
        with self.assertRaises(lean.ProtocolError):
            transfer.feed(_pdu(1, 0x03, command))

    def test_another_commands_data_set_over_the_limit_aborts(self) -> None:
        transfer = lean.Transfer({1: "1.2.840.10008.1.2.1"}, lambda r, f: (0, ""), max_bytes=100)
        find = _store_command(CTImageStorage, "1.2.3.4").replace(
            lean._implicit(0x00000100, struct.pack("<H", lean.C_STORE_RQ)),
            lean._implicit(0x00000100, struct.pack("<H", 0x0020)),  # C-FIND-RQ
        )
        usual, _ = transfer.feed(_pdu(1, 0x03, find))
        self.assertTrue(usual)
        with self.assertRaises(lean.ProtocolError):
            transfer.feed(_pdu(1, 0x00, b"\0" * 200))
