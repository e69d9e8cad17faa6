"""What a stranger or a confused device can do to the receiver, tried over real sockets.

A declared length is not a reason to allocate; idle connections must not lock out the
practice's devices; an instance acknowledged as stored must be filed; a deflated file must not
inflate without limit.
"""

from __future__ import annotations

import io
import socket
import struct
import tempfile
import tracemalloc
import zlib
from pathlib import Path

import pydicom
from django.conf import settings
from django.test import SimpleTestCase, TransactionTestCase
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import CTImageStorage, DeflatedExplicitVRLittleEndian, generate_uid

from portal.dicomnet import reactor
from portal.ingest import sniff
from portal.models import Instance, Patient, Practice
from tests.dicomnet.helpers import configure, receiving
from tests.dicomnet.test_receiver import phantom, scu

A_ASSOCIATE_RQ = 0x01


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
                assoc = scu().associate("127.0.0.1", port, ae_title="SMILEPACS")
                self.assertTrue(assoc.is_established, "the practice's device was locked out")
                self.assertEqual(assoc.send_c_echo().Status, 0x0000)
                assoc.release()
            finally:
                for s in idle:
                    s.close()
