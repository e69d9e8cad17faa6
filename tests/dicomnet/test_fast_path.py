"""C-STOREs served in the reading thread: what senders see is what pynetdicom would answer."""

from __future__ import annotations

import struct
import tempfile
import time
from pathlib import Path

import pydicom
from django.test import SimpleTestCase, TransactionTestCase
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import create_file_meta, encode, encode_file_meta

from portal.dicomnet import lean, reactor
from portal.models import Instance, Practice
from tests.dicomnet.helpers import configure, dataset_bytes, receiving
from tests.dicomnet.test_receiver import encoded_c_store, phantom, scu


class EncodingTestCase(SimpleTestCase):
    def test_the_answer_is_the_command_set_pynetdicom_would_encode(self) -> None:
        for comment in ("", "filed under the practice's record for this ID", "odd"):
            rsp = C_STORE()
            rsp.MessageIDBeingRespondedTo = 7
            rsp.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
            rsp.AffectedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.12345"
            rsp.Status = 0xB000
            if comment:
                rsp.ErrorComment = comment
            message = C_STORE_RSP()
            message.primitive_to_message(rsp)
            expected = encode(message.command_set, True, True)
            fast = lean.store_response(
                rsp.AffectedSOPClassUID, 7, 0xB000, comment, rsp.AffectedSOPInstanceUID
            )
            self.assertEqual(fast, expected)
            self.assertEqual(reactor.store_response(rsp), expected)

    def test_the_file_meta_is_what_pynetdicom_would_write(self) -> None:
        meta = create_file_meta(
            sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
            sop_instance_uid="1.2.3.4",
            transfer_syntax="1.2.840.10008.1.2.4.70",
        )
        expected = b"\0" * 128 + b"DICM" + encode_file_meta(meta)
        fast = lean.file_meta(
            "1.2.840.10008.5.1.4.1.1.2",
            "1.2.3.4",
            "1.2.840.10008.1.2.4.70",
            PYNETDICOM_IMPLEMENTATION_UID,
            PYNETDICOM_IMPLEMENTATION_VERSION,
        )
        self.assertEqual(fast, expected)


class FastPathTestCase(TransactionTestCase):
    def setUp(self) -> None:
        self.practice = Practice.objects.create(slug="smile", name="Smile Dental")
        configure(self.practice)
        self.tmp = Path(tempfile.mkdtemp(prefix="dicomnet-fast-"))
        self.files = phantom(self.tmp / "cbct")

    def _filed(self) -> dict[str, bytes]:
        from portal import vault

        return {
            i.sop_instance_uid: dataset_bytes(vault.read_bytes(i.blob))
            for i in Instance.objects.select_related("blob")
        }

    def test_small_pdus_and_an_echo_between_stores_are_all_answered(self) -> None:
        ae = scu()
        ae.maximum_pdu_size = 4096  # the receiver splits nothing; the sender splits a lot
        with receiving() as port:
            assoc = ae.associate("127.0.0.1", port, ae_title="SMILEPACS", max_pdu=4096)
            statuses = [assoc.send_c_store(pydicom.dcmread(self.files[0])).Status]
            statuses.append(assoc.send_c_echo().Status)
            statuses += [assoc.send_c_store(pydicom.dcmread(f)).Status for f in self.files[1:]]
            assoc.release()
        self.assertEqual(statuses, [0] * (len(self.files) + 1))
        filed = self._filed()
        for path in self.files:
            ds = pydicom.dcmread(path)
            self.assertEqual(filed[ds.SOPInstanceUID], encode(ds, False, True), path.name)

    def _raw_association(self, port: int):
        assoc = scu().associate("127.0.0.1", port, ae_title="SMILEPACS")
        self.assertTrue(assoc.is_established)
        return assoc, assoc.dul.socket.socket

    def _aborted(self, assoc) -> bool:  # noqa: ANN001
        """Return True once the sender's side saw the receiver abort the association."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if assoc.is_aborted or not assoc.is_established:
                return True
            time.sleep(0.05)
        return False

    def test_a_data_set_before_its_command_aborts_and_keeps_nothing_of_it(self) -> None:
        with receiving() as port:
            assoc, sock = self._raw_association(port)
            self.assertEqual(assoc.send_c_store(pydicom.dcmread(self.files[0])).Status, 0)
            context_id = assoc.accepted_contexts[0].context_id
            data = b"\0" * 64
            item = struct.pack(">IBB", len(data) + 2, context_id, 0x02) + data
            sock.sendall(struct.pack(">BBI", 0x04, 0, len(item)) + item)
            self.assertTrue(self._aborted(assoc))
        # What was answered before the fault stays filed; the fault filed nothing.
        self.assertEqual(Instance.objects.count(), 1)

    def test_a_presentation_context_never_accepted_aborts(self) -> None:
        with receiving() as port:
            assoc, sock = self._raw_association(port)
            pdus = encoded_c_store(assoc, self.files[0])
            first = bytearray(pdus[0])
            first[10] = 0xFD  # the item's presentation context ID
            sock.sendall(bytes(first))
            self.assertTrue(self._aborted(assoc))
        self.assertFalse(Instance.objects.exists())

    def test_command_and_data_set_in_one_pdu_are_filed(self) -> None:
        ds = pydicom.dcmread(self.files[0])
        with receiving() as port:
            assoc, sock = self._raw_association(port)
            pdus = encoded_c_store(assoc, self.files[0], max_pdu=1 << 24)
            items = b"".join(bytes(p[6:]) for p in pdus)
            sock.sendall(struct.pack(">BBI", 0x04, 0, len(items)) + items)
            time.sleep(0.5)  # its answer arrives (the sender's side takes it as unexpected)
            # The next exchange shows both ends still in step.
            following = assoc.send_c_store(pydicom.dcmread(self.files[1])).Status
            assoc.release()
        self.assertEqual(following, 0)
        filed = self._filed()
        self.assertEqual(filed[ds.SOPInstanceUID], encode(ds, False, True))
        self.assertEqual(len(filed), 2)


class ConnectionsTestCase(TransactionTestCase):
    def test_associations_leave_no_database_connection_behind(self) -> None:
        from django.db import connection

        if connection.vendor != "postgresql":
            self.skipTest("PostgreSQL only: runs in .ci/run's PostgreSQL pass")
        practice = Practice.objects.create(slug="smile", name="Smile Dental")
        configure(practice)
        files = phantom(Path(tempfile.mkdtemp(prefix="dicomnet-conn-")))

        def sessions() -> dict[int, str]:
            """This database's server sessions other than the test's own: pid -> last query."""
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pid, query FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                return dict(cursor.fetchall())

        # Sessions of earlier tests may still be closing: only those opened since count.
        before = set(sessions())
        with receiving() as port:
            for f in files[:4]:  # each its own association, its own threads
                assoc = scu().associate("127.0.0.1", port, ae_title="SMILEPACS")
                self.assertEqual(assoc.send_c_store(pydicom.dcmread(f)).Status, 0)
                assoc.release()
            deadline = time.monotonic() + 10
            left = {pid: q for pid, q in sessions().items() if pid not in before}
            while left and time.monotonic() < deadline:
                time.sleep(0.1)
                left = {pid: q for pid, q in sessions().items() if pid not in before}
            self.assertEqual(left, {})
        self.assertEqual(Instance.objects.count(), 4)
