"""Files sent through a patient's upload link that concern another record of the practice.

Sent through José's link, a scan naming Maria (her Patient ID and her name) was filed into
José's record on a click, with nothing but "named in the file: Maria" on the page; a scan
reusing José's existing study joined it, and so every open whole-study link of it, unsaid.
"""

from __future__ import annotations

from portal.models import Instance, Patient, Study
from sharing.models import ReceivedFile
from sharing.services import issue_link
from tests.base import BaseTestCase
from tests.sharing.upload_helpers import UploadLinkMixin, scans


class OtherRecordsTestCase(UploadLinkMixin, BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.maria = Patient.objects.create(
            practice=self.practice, patient_id="P-MARIA", name="Maria Other"
        )

    def received(self) -> str:
        self.login(self.bob)
        return self.client.get("/received/").content.decode()

    def test_a_scan_naming_another_patient_is_flagged_and_not_filed_on_a_click(self) -> None:
        self.verify()
        self.send(*[(f"IM{n}.dcm", data) for n, data in enumerate(scans("P-MARIA", "Other^Maria"))])
        page = self.received()
        self.assertIn("names another patient of the practice", page)
        self.assertIn("Maria Other (ID P-MARIA)", page)
        r = self.client.post(f"/received/links/{self.link.code}/accept/", follow=True)
        self.assertContains(r, "not accepted: they name another patient of the practice")
        self.assertFalse(Instance.objects.filter(series__study__description="CBCT from Dr Other"))
        self.assertEqual(set(ReceivedFile.objects.values_list("state", flat=True)), {"pending"})
        self.client.post(f"/received/links/{self.link.code}/decline/")
        self.assertEqual(set(ReceivedFile.objects.values_list("state", flat=True)), {"declined"})

    def test_another_records_id_under_this_patients_name_is_said_and_may_be_filed(self) -> None:
        """Another practice's numbering may reuse an ID of this one: the name decides."""
        Patient.objects.create(practice=self.practice, patient_id="OTHER-77", name="Someone Else")
        self.verify()
        self.send(*[(f"IM{n}.dcm", data) for n, data in enumerate(scans("OTHER-77"))])
        page = self.received()
        self.assertIn("Patient ID OTHER-77 is another patient", page)
        self.client.post(f"/received/links/{self.link.code}/accept/")
        study = Study.objects.get(description="CBCT from Dr Other")
        self.assertEqual(study.patient, self.pat)

    def test_a_scan_adding_to_a_study_on_record_says_so_with_its_open_links(self) -> None:
        issue_link(study=self.study, created_by=self.alice, recipient_kind="patient")
        self.verify()
        data = scans(study_uid=self.study.study_uid)
        self.send(*[(f"IM{n}.dcm", d) for n, d in enumerate(data)])
        page = self.received()
        self.assertIn("adds to a study already on record", page)
        self.assertIn("shared through 1 open link", page)
