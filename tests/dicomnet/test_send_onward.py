"""Send onward: staff send a study by C-STORE to Orthanc; every instance arrives unchanged."""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path

import pytest

from audit.models import AccessEvent, Action, Outcome
from portal import vault
from portal.bench import orthanc
from portal.demo.phantom import PhantomGeometry, write_cbct
from portal.ingest import ingest_path
from portal.models import DicomPeer, Instance, Transfer
from tests.base import BaseTestCase
from tests.dicomnet.helpers import dataset_bytes

SMALL = PhantomGeometry(slices=5, rows=64, columns=64, pixel_spacing_mm=1.0, marker_slice=1)


def require_orthanc() -> None:
    if orthanc.binary():
        return
    if os.environ.get("CI"):
        pytest.fail("Orthanc is not installed (apt-get install orthanc)")
    pytest.skip("Orthanc is not installed (CI runs this test)")


class SendOnwardTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        require_orthanc()
        folder = Path(tempfile.mkdtemp(prefix="send-onward-"))
        write_cbct(
            folder,
            SMALL,
            patient_name="Example^Pat",
            patient_id="P-1001",
            birth_date=date(1980, 5, 17),
            study_date=date(2026, 1, 2),
        )
        report = ingest_path(folder, practice=self.practice)
        self.cbct = report.studies[0]
        self.login(self.alice)

    def destination(self, o: orthanc.Orthanc, ae_title: str | None = None) -> DicomPeer:
        return DicomPeer.objects.create(
            practice=self.practice,
            name="Specialist PACS",
            ae_title=ae_title or o.aet,
            address="127.0.0.1",
            port=o.dicom_port,
            may_send=False,
        )

    def test_it_sends_every_instance_byte_identical_and_audits_the_disclosure(self) -> None:
        with orthanc.running(modalities={"portal": ("PORTAL", "127.0.0.1", 104)}) as o:
            dest = self.destination(o)
            with self.captureOnCommitCallbacks(execute=True):
                r = self.client.post(
                    f"/studies/{self.cbct.code}/send/", {"destination": str(dest.code)}
                )
            self.assertEqual(r.status_code, 302)
            transfer = Transfer.objects.get()
            self.assertEqual((transfer.status, transfer.sent), ("done", SMALL.slices))
            received = {}
            for oid in o.json("/instances"):
                data = o.request(f"/instances/{oid}/file")
                sop = o.json(f"/instances/{oid}/simplified-tags")["SOPInstanceUID"]
                received[sop] = dataset_bytes(data)
        for instance in Instance.objects.filter(series__study=self.cbct):
            stored = vault.read_bytes(instance.blob)
            self.assertEqual(received[instance.sop_instance_uid], dataset_bytes(stored))
        page = self.client.get(r["Location"])
        self.assertContains(page, f"{SMALL.slices} of {SMALL.slices} sent")
        self.assertContains(page, "Image 1: stored")
        event = AccessEvent.objects.get(action=Action.DICOM_SEND, detail__phase="finished")
        self.assertEqual(event.patient, self.cbct.patient)
        self.assertEqual(event.detail["destination"], "Specialist PACS")
        self.assertEqual((event.detail["sent"], event.outcome), (SMALL.slices, Outcome.OK))
        from portal.compliance.disclosures import account, period

        start, end = period(None, None)
        sends = [e for e in account(self.cbct.patient, start, end) if e.how == "DICOM transfer"]
        self.assertEqual(len(sends), 1)
        self.assertIn("Specialist PACS", sends[0].recipient)
        self.assertIn(f"{SMALL.slices} of {SMALL.slices} images", sends[0].what)

    def test_it_reports_a_destination_that_refuses(self) -> None:
        with orthanc.running(modalities={"portal": ("PORTAL", "127.0.0.1", 104)}) as o:
            dest = self.destination(o, ae_title="WRONGAE")
            with self.captureOnCommitCallbacks(execute=True):
                self.client.post(
                    f"/studies/{self.cbct.code}/send/", {"destination": str(dest.code)}
                )
        transfer = Transfer.objects.get()
        self.assertEqual(transfer.status, "failed")
        self.assertIn("refused", transfer.error)
        event = AccessEvent.objects.get(action=Action.DICOM_SEND, detail__phase="finished")
        self.assertEqual(event.outcome, Outcome.FAILED)

    def test_it_checks_practice(self) -> None:
        dest = DicomPeer.objects.create(
            practice=self.practice, name="PACS", ae_title="X", address="127.0.0.1", port=104
        )
        self.login(self.charlie)
        r = self.client.post(f"/studies/{self.cbct.code}/send/", {"destination": str(dest.code)})
        self.assertEqual(r.status_code, 404)
        self.assertFalse(Transfer.objects.exists())

    def test_it_is_post_only(self) -> None:
        r = self.client.get(f"/studies/{self.cbct.code}/send/")
        self.assertEqual(r.status_code, 405)

    def test_it_offers_destinations_on_the_study_page(self) -> None:
        DicomPeer.objects.create(
            practice=self.practice, name="Lab PACS", ae_title="LAB", address="127.0.0.1", port=104
        )
        r = self.client.get(f"/studies/{self.cbct.code}/")
        self.assertContains(r, "Send to another system")
        self.assertContains(r, "Lab PACS (LAB)")
