"""What a stranger or a confused device can do to the receiver, tried over real sockets.

A declared length is not a reason to allocate; idle connections must not lock out the
practice's devices; an instance acknowledged as stored must be filed; a deflated file must not
inflate without limit.
"""

from __future__ import annotations

import socket
import tempfile
import tracemalloc
from pathlib import Path

import pydicom
from django.test import SimpleTestCase, TransactionTestCase

from portal.dicomnet import reactor
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
