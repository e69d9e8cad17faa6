"""The whole road: a 450-slice CBCT sent by storescu is filed, shared, and pulled by Orthanc.

The CBCT unit (dcmtk's storescu) sends to the receiver; staff see the study as arrived from
the unit and share it; the referrer makes an access token on the recipient page; Orthanc, as
the referrer's PACS, retrieves the study through the share's DICOMweb with that token; every
instance in Orthanc is byte-identical to what the unit sent.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import date
from pathlib import Path

import pydicom
import pytest
from django.test import LiveServerTestCase
from django_otp import DEVICE_ID_SESSION_KEY

from portal.bench import orthanc
from portal.demo.phantom import PhantomGeometry, write_cbct
from portal.models import Instance, Practice, Role, Study
from sharing.models import ShareLink
from sharing.services import issue_link
from tests.base import make_staff
from tests.dicomnet.helpers import configure, dataset_bytes, receiving, storescu

# 450 slices of 512 x 512, as a dental CBCT unit makes them (about 236 MB).
CBCT = PhantomGeometry(slices=450)
PASSWORD = "amber-anchor-apple-arrow-12"


def require_orthanc_dicomweb() -> str:
    plugin = orthanc.dicomweb_plugin()
    if orthanc.binary() and plugin:
        return plugin
    message = "Orthanc with its DICOMweb plugin is needed (apt-get install orthanc-dicomweb)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class CbctJourneyTestCase(LiveServerTestCase):
    def test_a_cbct_from_the_unit_reaches_the_referrers_pacs_byte_identical(self) -> None:
        plugin = require_orthanc_dicomweb()
        practice = Practice.objects.create(slug="smile", name="Smile Dental")
        alice = make_staff("alice", practice, Role.ADMIN)
        configure(practice)
        folder = Path(tempfile.mkdtemp(prefix="cbct-journey-"))
        files = write_cbct(
            folder,
            CBCT,
            patient_name="Doe^Jamie",
            patient_id="P-4501",
            birth_date=date(1975, 2, 3),
            study_date=date(2026, 5, 6),
        )

        with receiving() as port:
            sent = storescu(port, files)
        self.assertEqual(sent.returncode, 0, sent.stderr[-2000:])
        study = Study.objects.get(practice=practice)
        self.assertEqual(Instance.objects.filter(series__study=study).count(), 450)

        self.client.force_login(alice)
        session = self.client.session
        session[DEVICE_ID_SESSION_KEY] = alice.totpdevice_set.get().persistent_id
        session.save()
        page = self.client.get(f"/studies/{study.code}/")
        self.assertContains(page, "Arrived from CBCT unit")

        issued = issue_link(
            study=study,
            created_by=alice,
            recipient_kind=ShareLink.Recipient.PATIENT,
            password=PASSWORD,
        )
        recipient = self.client_class()
        recipient.get(issued.path)
        recipient.post("/s/", {"password": PASSWORD, "birth_date": "1975-02-03"})
        token = recipient.post("/s/software/tokens/", {"label": "PACS"}).context["new_token"]

        extra = orthanc.dicomweb_client(
            "portal", f"{self.live_server_url}/dicomweb", {"Authorization": f"Bearer {token}"}
        )
        with orthanc.running(plugins=[plugin], extra=extra) as o:
            body = json.dumps({"Resources": [{"Study": study.study_uid}]}).encode()
            o.request("/dicom-web/servers/portal/retrieve", body, "POST")
            ids = o.json("/instances")
            self.assertEqual(len(ids), 450)
            received = {}
            for oid in ids:
                data = o.request(f"/instances/{oid}/file")
                received[
                    pydicom.dcmread(
                        pydicom.filebase.DicomBytesIO(data), stop_before_pixels=True
                    ).SOPInstanceUID
                ] = dataset_bytes(data)
        for path in files:
            uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
            self.assertEqual(received[uid], dataset_bytes(path), uid)
