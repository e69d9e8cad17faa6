"""What a stranger or a confused device can do to the receiver, tried over real sockets.

A declared length is not a reason to allocate; idle or half-sent connections must not lock out
the practice's devices, from one address or from many; an association request is small or
refused unread; refusals do not flood the access history; an instance acknowledged as stored
must be filed; a deflated file must not inflate without limit.
"""

from __future__ import annotations

import io
import socket
import struct
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path
from unittest import mock

import pydicom
from django.conf import settings
from django.test import SimpleTestCase, TransactionTestCase
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import CTImageStorage, DeflatedExplicitVRLittleEndian, generate_uid

from audit.models import AccessEvent, Action
from portal.dicomnet import reactor, receiver
from portal.ingest import sniff
from portal.models import Instance, Patient, Practice
from tests.dicomnet.helpers import configure, receiving
from tests.dicomnet.test_receiver import phantom, scu

A_ASSOCIATE_RQ = 0x01


def assert_device_gets_through(test, port: int) -> None:  # noqa: ANN001 - a TestCase
    """The practice's device (CBCT1 from 127.0.0.1) associates and echoes."""
    assoc = scu().associate("127.0.0.1", port, ae_title="SMILEPACS")
    test.assertTrue(assoc.is_established, "the practice's device was locked out")
    test.assertEqual(assoc.send_c_echo().Status, 0x0000)
    assoc.release()


class DeclaredLengthTestCase(SimpleTestCase):
    def test_a_huge_declared_pdu_length_allocates_only_what_arrives(self) -> None:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            theirs.sendall(b"\x00" * 10)
            theirs.shutdown(socket.SHUT_WR)
            reader = reactor.PromptSocket.__new__(reactor.PromptSocket)
            reader.socket = ours
            tracemalloc.start()
            try:
                got = reader.recv(0xFFFFFFF0)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        self.assertEqual(bytes(got), b"\x00" * 10)
        self.assertLess(peak, 64 * 2**20)


class AcknowledgedMeansFiledTestCase(TransactionTestCase):
    def setUp(self) -> None:
        self.practice = Practice.objects.create(slug="smile", name="Smile Dental")
        configure(self.practice)
        self.tmp = Path(tempfile.mkdtemp(prefix="dicomnet-hostile-"))

    def test_a_second_patient_in_a_study_begun_in_the_same_association_is_refused(self) -> None:
        # A worklist mix-up: one new study, two patients. Whatever the sender hears as stored
        # must be on record; the instance that cannot be filed must be refused, not dropped.
        first = pydicom.dcmread(phantom(self.tmp / "a", patient_id="ZQ-A")[0])
        second = pydicom.dcmread(phantom(self.tmp / "b", patient_id="ZQ-B")[0])
        second.StudyInstanceUID = first.StudyInstanceUID
        with receiving() as port:
            assoc = scu().associate("127.0.0.1", port, ae_title="SMILEPACS")
            self.assertTrue(assoc.is_established)
            statuses = [assoc.send_c_store(ds).Status for ds in (first, second)]
            assoc.release()
        self.assertEqual(statuses[0], 0x0000)
        self.assertEqual(statuses[1], 0xC000)
        stored = set(Instance.objects.values_list("sop_instance_uid", flat=True))
        self.assertEqual(stored, {first.SOPInstanceUID})
        self.assertFalse(Patient.objects.filter(patient_id="ZQ-B").exists())


def deflate_bomb(pixel_bytes: int = 2**30) -> bytes:
    """A deflated CT whose 1 GiB of zero pixels compress to about a megabyte."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    head = io.BytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.Modality = "ZQ-BOMB", "CT"
    ds.Rows = ds.Columns = 16384
    ds.BitsAllocated, ds.SamplesPerPixel = 32, 1
    body = io.BytesIO()
    target = DicomFileLike(body)
    target.is_implicit_VR, target.is_little_endian = False, True  # what deflate wraps
    write_dataset(target, ds)
    pack = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [pack.compress(body.getvalue())]
    out.append(pack.compress(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, pixel_bytes)))
    zeros = bytes(2**20)
    out += [pack.compress(zeros) for _ in range(pixel_bytes // len(zeros))]
    out.append(pack.flush())
    return head.getvalue() + b"".join(out)


class DeflateBombTestCase(SimpleTestCase):
    def test_a_deflated_file_is_refused_before_it_inflates_without_limit(self) -> None:
        bomb = deflate_bomb()
        self.assertLess(len(bomb), 4 * 2**20)
        tracemalloc.start()
        try:
            with self.assertRaises(sniff.Rejected) as refused:
                sniff.parse_dicom(bomb, True)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertIn("larger than allowed", str(refused.exception))
        self.assertLess(peak, 600 * 2**20)


class IdleConnectionsTestCase(TransactionTestCase):
    def setUp(self) -> None:
        self.practice = Practice.objects.create(slug="smile", name="Smile Dental")
        configure(self.practice)

    def test_idle_connections_from_one_address_do_not_lock_the_devices_out(self) -> None:
        # More connections than the receiver serves at once, from one address, saying nothing.
        idle = []
        with receiving() as port:
            try:
                for _ in range(settings.PORTAL_DICOM_MAX_ASSOCIATIONS + 1):
                    s = socket.socket()
                    s.bind(("127.0.0.2", 0))
                    s.connect(("127.0.0.1", port))
                    idle.append(s)
                # One over the address's share is closed at once: it reads end of file.
                idle[-1].settimeout(10)
                self.assertEqual(idle[-1].recv(1), b"")
                assert_device_gets_through(self, port)
            finally:
                for s in idle:
                    s.close()


class StrangersTestCase(TransactionTestCase):
    def setUp(self) -> None:
        self.practice = Practice.objects.create(slug="smile", name="Smile Dental")
        configure(self.practice)

    def _from(self, address: str, port: int) -> socket.socket:
        s = socket.socket()
        s.bind((address, 0))
        s.connect(("127.0.0.1", port))
        return s

    def test_a_half_sent_association_request_is_closed_at_the_negotiation_deadline(self) -> None:
        with mock.patch.object(receiver, "NEGOTIATION_SECONDS", 2), receiving() as port:
            with self._from("127.0.0.2", port) as s:
                # The start of a request that says it is 1000 bytes long, and no more.
                s.sendall(struct.pack(">BBI", A_ASSOCIATE_RQ, 0, 1000) + b"\x00")
                s.settimeout(20)
                started = time.monotonic()
                self.assertEqual(s.recv(1), b"")
                self.assertLess(time.monotonic() - started, 15)

    def assert_closed_unread(self, pdu_type: int, declared: int) -> None:
        """Declare a PDU of `declared` bytes and stream zeros: the receiver must close first."""
        with receiving() as port, self._from("127.0.0.2", port) as s:
            s.sendall(struct.pack(">BBI", pdu_type, 0, declared))
            s.settimeout(20)
            sent = 0
            try:
                while sent < 64 * 2**20:
                    s.sendall(b"\x00" * 65536)
                    sent += 65536
            except OSError:
                pass  # closed by the receiver: the rest was never read
            self.assertLess(sent, 16 * 2**20, "the receiver read on into the declared length")

    def test_an_association_request_larger_than_any_real_one_is_refused_unread(self) -> None:
        self.assert_closed_unread(A_ASSOCIATE_RQ, 64 * 2**20)

    def test_data_before_the_association_is_refused_unread(self) -> None:
        # A P-DATA PDU declaring 4 GiB before any association: closed, never buffered.
        self.assert_closed_unread(0x04, 0xFFFFFFF0)

    def test_strangers_from_many_addresses_leave_room_for_the_practices_devices(self) -> None:
        idle = []
        with receiving() as port:
            try:
                for n in range(settings.PORTAL_DICOM_MAX_ASSOCIATIONS * 2):
                    try:
                        idle.append(self._from(f"127.0.0.{2 + n % 4}", port))
                    except OSError:
                        break
                time.sleep(0.5)
                assert_device_gets_through(self, port)
            finally:
                for s in idle:
                    s.close()

    def test_refusals_in_a_burst_are_two_lines_of_the_access_history_counting_all(self) -> None:
        with receiving() as port:
            for n in range(12):
                assoc = scu(f"X{n:05d}").associate("127.0.0.1", port, ae_title="SMILEPACS")
                self.assertTrue(assoc.is_rejected)
        # The first as it happened; the other eleven in one line when the receiver stopped.
        denials = AccessEvent.objects.filter(action=Action.ACCESS_DENIED, detail__via="dicom")
        details = [e.detail for e in denials.order_by("pk")]
        self.assertEqual(len(details), 2)
        self.assertEqual({d["reason"] for d in details}, {"unknown calling AE title"})
        self.assertEqual([d.get("repeated", 0) for d in details], [0, 11])


class LibraryLogTestCase(SimpleTestCase):
    def test_pynetdicom_lines_come_without_tracebacks_and_once_a_minute(self) -> None:
        import logging
        from logging.config import dictConfig

        stream = io.StringIO()
        dictConfig(settings.LOGGING)
        handler = logging.getLogger("pynetdicom").handlers[0]
        previous = handler.setStream(stream)
        try:
            log = logging.getLogger("pynetdicom.dul")
            for _ in range(50):
                try:
                    raise ValueError("Invalid 'Called AE Title' value")
                except ValueError as exc:
                    log.exception("Unable to decode the received PDU data")
                    log.exception(exc)  # as pynetdicom logs some: the exception as message
        finally:
            handler.setStream(previous)
        written = stream.getvalue()
        self.assertEqual(written.count("Unable to decode"), 1)
        self.assertEqual(written.count("Invalid 'Called AE Title'"), 1)
        self.assertNotIn("Traceback", written)
