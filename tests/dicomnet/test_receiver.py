"""The DICOM receiver against real senders: dcmtk's storescu and echoscu, and pynetdicom."""

from __future__ import annotations

import io
import socket
import subprocess
import tempfile
import threading
from datetime import date
from pathlib import Path

import pydicom
from django.core import mail
from django.test import TransactionTestCase, override_settings
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from audit.models import AccessEvent, Action, Outcome
from portal import vault
from portal.demo.phantom import PhantomGeometry, write_cbct
from portal.models import Arrival, Instance, Patient, Practice, StoredObject, Study
from tests.base import vault_files
from tests.dicomnet.helpers import (
    configure,
    dataset_bytes,
    receiving,
    require_tool,
    storescu,
)

SMALL = PhantomGeometry(slices=6, rows=64, columns=64, pixel_spacing_mm=1.0, marker_slice=1)


def phantom(folder: Path, patient_id: str = "P-2001", geometry=SMALL, **kwargs) -> list[Path]:
    return write_cbct(
        folder,
        geometry,
        patient_name=kwargs.pop("patient_name", "Doe^Jamie"),
        patient_id=patient_id,
        birth_date=date(1975, 2, 3),
        study_date=date(2026, 5, 6),
        **kwargs,
    )


def scu(calling: str = "CBCT1") -> AE:
    ae = AE(ae_title=calling)
    ae.add_requested_context(CTImageStorage, pydicom.uid.ExplicitVRLittleEndian)
    ae.add_requested_context(Verification)
    return ae


def encoded_c_store(
    assoc, path: Path, max_pdu: int = 16384, context_id: int | None = None, sop_instance: str = ""
) -> list[bytes]:
    """Return the P-DATA-TF PDUs of a C-STORE request as a sender would put them on the wire
    (on the first accepted context, or context_id; naming the file's instance, or
    sop_instance)."""
    from pynetdicom.dimse_messages import C_STORE_RQ
    from pynetdicom.dimse_primitives import C_STORE
    from pynetdicom.dsutils import encode
    from pynetdicom.pdu import P_DATA_TF

    ds = pydicom.dcmread(path)
    req = C_STORE()
    req.MessageID = 99
    req.AffectedSOPClassUID = ds.SOPClassUID
    req.AffectedSOPInstanceUID = sop_instance or ds.SOPInstanceUID
    req.Priority = 2
    req.DataSet = io.BytesIO(encode(ds, False, True))
    msg = C_STORE_RQ()
    msg.primitive_to_message(req)
    if context_id is None:
        context_id = assoc.accepted_contexts[0].context_id
    pdus = []
    for primitive in msg.encode_msg(context_id, max_pdu):
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        pdus.append(pdu.encode())
    return pdus


class ReceiverTestCase(TransactionTestCase):
    def setUp(self) -> None:
        self.practice = Practice.objects.create(slug="smile", name="Smile Dental")
        self.node, self.device = configure(self.practice)
        self.tmp = Path(tempfile.mkdtemp(prefix="dicomnet-test-"))
        self.files_before = vault_files()

    def orphans(self) -> set[str]:
        """Return ciphertext files this test left in the vault that no stored object names."""
        added = vault_files() - self.files_before
        return added - set(StoredObject.objects.values_list("storage_name", flat=True))

    def test_it_files_a_storescu_study_byte_identical_with_its_device(self) -> None:
        files = phantom(self.tmp / "cbct")
        with receiving() as port:
            done = storescu(port, files)
        self.assertEqual(done.returncode, 0, done.stderr)
        study = Study.objects.get(practice=self.practice)
        self.assertEqual(study.patient.patient_id, "P-2001")
        self.assertEqual(Instance.objects.filter(series__study=study).count(), len(files))
        arrival = Arrival.objects.get(study=study)
        self.assertEqual((arrival.device, arrival.instances), ("CBCT unit", len(files)))
        for path in files:
            original = pydicom.dcmread(path, stop_before_pixels=True)
            instance = Instance.objects.get(sop_instance_uid=original.SOPInstanceUID)
            stored = vault.read_bytes(instance.blob)
            self.assertEqual(dataset_bytes(stored), dataset_bytes(path))
            self.assertEqual(instance.transfer_syntax_uid, original.file_meta.TransferSyntaxUID)
        event = AccessEvent.objects.filter(action=Action.INGEST, detail__via="dicom").get()
        self.assertEqual((event.ip_address, event.detail["device"]), ("127.0.0.1", "CBCT unit"))

    def test_it_keeps_a_compressed_original_in_the_syntax_proposed_first(self) -> None:
        ds = pydicom.dcmread(phantom(self.tmp / "c")[0])
        ds.compress(pydicom.uid.RLELossless)
        target = self.tmp / "rle.dcm"
        ds.save_as(target, enforce_file_format=True)
        with receiving() as port:
            # -xr: one context proposing RLE first, then the uncompressed syntaxes.
            done = storescu(port, [target], "SMILEPACS", "CBCT1", "-xr")
        self.assertEqual(done.returncode, 0, done.stderr)
        instance = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
        self.assertEqual(instance.transfer_syntax_uid, pydicom.uid.RLELossless)
        self.assertEqual(dataset_bytes(vault.read_bytes(instance.blob)), dataset_bytes(target))

    def test_it_answers_echo_for_a_listed_device_only(self) -> None:
        echoscu = require_tool("echoscu")
        with receiving() as port:
            ok = subprocess.run(  # noqa: S603
                [echoscu, "-aet", "CBCT1", "-aec", "SMILEPACS", "127.0.0.1", str(port)],
                capture_output=True,
                text=True,
                check=False,
            )
            refused = subprocess.run(  # noqa: S603
                [echoscu, "-aet", "STRANGER", "-aec", "SMILEPACS", "127.0.0.1", str(port)],
                capture_output=True,
                text=True,
                check=False,
            )
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("Calling AE Title Not Recognized", refused.stdout + refused.stderr)

    def test_it_refuses_unknown_titles_and_addresses_with_the_right_reason(self) -> None:
        self.device.address = "192.0.2.7"  # the device is listed at another address
        self.device.save()
        cases = [("CBCT1", "NOSUCHPACS", 0x07), ("STRANGER", "SMILEPACS", 0x03)]
        cases.append(("CBCT1", "SMILEPACS", 0x03))
        with receiving() as port:
            for calling, called, diagnostic in cases:
                with self.subTest(calling=calling, called=called):
                    assoc = scu(calling).associate("127.0.0.1", port, ae_title=called)
                    self.assertTrue(assoc.is_rejected)
                    rj = assoc.acceptor.primitive
                    self.assertEqual(
                        (rj.result, rj.result_source, rj.diagnostic), (1, 1, diagnostic)
                    )
        denied = AccessEvent.objects.filter(action=Action.ACCESS_DENIED, outcome=Outcome.DENIED)
        reasons = sorted(e.detail["reason"] for e in denied)
        self.assertEqual(
            reasons, ["address not allowed", "unknown called AE title", "unknown calling AE title"]
        )
        self.assertFalse(Study.objects.exists())

    def test_it_receives_from_several_senders_at_once(self) -> None:
        batches = [phantom(self.tmp / f"s{i}", patient_id=f"P-30{i}") for i in range(3)]
        shared = phantom(self.tmp / "shared", patient_id="P-399")
        results: list = []

        def send_dcmtk(files) -> None:
            results.append(storescu(port, files).returncode)

        def send_pynetdicom(files) -> None:
            assoc = scu().associate("127.0.0.1", port, ae_title="SMILEPACS")
            statuses = [assoc.send_c_store(pydicom.dcmread(f)).Status for f in files]
            assoc.release()
            results.append(max(statuses))

        with receiving() as port:
            threads = [threading.Thread(target=send_dcmtk, args=(b,)) for b in batches]
            # One study split over two associations at the same moment.
            threads.append(threading.Thread(target=send_dcmtk, args=(shared[:3],)))
            threads.append(threading.Thread(target=send_pynetdicom, args=(shared[3:],)))
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
        self.assertEqual(results, [0] * 5)
        self.assertEqual(Study.objects.count(), 4)
        self.assertEqual(Instance.objects.count(), 4 * SMALL.slices)
        shared_study = Study.objects.get(patient__patient_id="P-399")
        self.assertEqual(Instance.objects.filter(series__study=shared_study).count(), SMALL.slices)
        self.assertEqual(self.orphans(), set())

    def test_it_refuses_a_malformed_data_set_with_a_reason_and_keeps_the_rest(self) -> None:
        good, bad = phantom(self.tmp / "m")[:2]
        broken = pydicom.dcmread(bad)
        broken.PixelData = broken.PixelData[:100]  # far shorter than Rows x Columns declare
        with receiving() as port:
            assoc = scu().associate("127.0.0.1", port, ae_title="SMILEPACS")
            ok = assoc.send_c_store(pydicom.dcmread(good))
            refused = assoc.send_c_store(broken)
            assoc.release()
        self.assertEqual(ok.Status, 0x0000)
        self.assertEqual(refused.Status, 0xC000)
        self.assertTrue(refused.ErrorComment)
        self.assertEqual(Instance.objects.count(), 1)
        self.assertEqual(self.orphans(), set())

    def test_it_keeps_nothing_partial_of_a_dropped_association(self) -> None:
        files = phantom(self.tmp / "d")
        with receiving() as port:
            assoc = scu().associate("127.0.0.1", port, ae_title="SMILEPACS")
            for f in files[:2]:
                self.assertEqual(assoc.send_c_store(pydicom.dcmread(f)).Status, 0)
            # The third instance's command and the first half of its data, then the cable
            # is pulled: the receiver never sees the end of that message.
            pdus = encoded_c_store(assoc, files[2])
            sock: socket.socket = assoc.dul.socket.socket
            for pdu in pdus[: len(pdus) // 2]:
                sock.sendall(pdu)
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            self._wait_for(lambda: Instance.objects.count() >= 2)
        kept = set(Instance.objects.values_list("sop_instance_uid", flat=True))
        sent = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files[:2]}
        self.assertEqual(kept, sent)
        self.assertEqual(self.orphans(), set())

    def test_it_keeps_an_instance_naming_no_patient_for_staff_to_file(self) -> None:
        from portal.models import PendingFile

        ds = pydicom.dcmread(phantom(self.tmp / "p")[0])
        ds.PatientID = ""
        with receiving() as port:
            assoc = scu().associate("127.0.0.1", port, ae_title="SMILEPACS")
            status = assoc.send_c_store(ds)
            assoc.release()
        self.assertEqual(status.Status, 0x0000)
        self.assertFalse(Instance.objects.exists())
        self.assertEqual(PendingFile.objects.filter(practice=self.practice).count(), 1)
        self.assertEqual(self.orphans(), set())

    def test_it_warns_when_it_files_under_the_practices_own_record(self) -> None:
        Patient.objects.create(practice=self.practice, patient_id="P-2001", name="Jamie Doe-Smith")
        first = phantom(self.tmp / "w")[0]
        with receiving() as port:
            assoc = scu().associate("127.0.0.1", port, ae_title="SMILEPACS")
            status = assoc.send_c_store(pydicom.dcmread(first))
            assoc.release()
        self.assertEqual(status.Status, 0xB000)
        self.assertIn("record", status.ErrorComment)
        self.assertEqual(Instance.objects.get().series.study.patient.name, "Jamie Doe-Smith")

    @override_settings(PORTAL_BASE_URL="https://portal.example")
    def test_it_tells_the_front_desk_without_patient_data(self) -> None:
        self.node.notify_email = "desk@smile.example"
        self.node.save()
        files = phantom(self.tmp / "n", patient_name="Secret^Name")
        with receiving() as port:
            storescu(port, files)
        message = mail.outbox[-1]
        self.assertIn("arrived from CBCT unit", message.subject)
        self.assertIn(f"{len(files)} images", message.body)
        self.assertNotIn("Secret", message.body + message.subject)
        self.assertNotIn("P-2001", message.body)

    def _wait_for(self, condition, seconds: float = 10) -> None:
        import time

        deadline = time.monotonic() + seconds
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)
