"""A share link whose recipient gets only a de-identified copy (PS3.15 Annex E basic profile).

Every URL such a recipient can reach is fetched, and nothing in it may name the patient.
"""

from __future__ import annotations

import io
import zipfile

import pydicom

from audit.models import AccessEvent, Action
from portal import vault
from portal.models import Instance, Patient
from sharing.dicomweb.tokens import create_token
from sharing.models import ShareLink
from tests.sharing.deidentified_helpers import DeidentifiedShareBase


class DeidentifiedShareTestCase(DeidentifiedShareBase):
    # -- staff side -----------------------------------------------------------------------
    def test_a_referrer_is_told_whose_images_these_are(self) -> None:
        # The page said only "Images shared by <practice>": a dentist with several
        # referrals open could not tell which patient's scan this was.
        self.sign_in(self.issue(deidentified=False))
        page = self.body("/s/home/").decode()
        self.assertIn(self.patient.name, page)
        self.assertIn("born 1 January 1970", page)
        self.assertIn("Original files for your imaging software", page)
        self.assertNotIn("your dentist", page)

    def test_the_share_form_offers_a_deidentified_copy_and_flags_burned_in_text(self) -> None:
        self.login(self.alice)
        page = self.client.get(f"/studies/{self.source.code}/").content.decode()
        self.assertIn("De-identified copy (for teaching or a second opinion)", page)
        r = self.client.post(
            f"/studies/{self.source.code}/share/",
            {
                "recipient_kind": "referrer",
                "recipient_email": "teacher@example.org",
                "expires_in_days": 7,
                "allow_download": "on",
                "deidentified": "on",
            },
        )
        self.assertEqual(r.status_code, 200, r.content[:2000])
        page = r.content.decode()
        self.assertIn("De-identified copy", page)
        self.assertIn("burned-in annotation", page)
        self.assertIn("2 of 3 files", page)
        share = ShareLink.objects.get(source_study=self.source)
        self.assertTrue(share.deidentified)
        listing = self.client.get(f"/studies/{self.source.code}/").content.decode()
        self.assertIn(f'id="link-{share.code}"', listing)
        self.assertIn("De-identified copy", listing)

    def test_a_patient_cannot_get_a_deidentified_link(self) -> None:
        self.login(self.alice)
        r = self.client.post(
            f"/studies/{self.source.code}/share/",
            {"recipient_kind": "patient", "expires_in_days": 7, "deidentified": "on"},
        )
        self.assertEqual(r.status_code, 400)
        self.assertFalse(ShareLink.objects.exists())

    def test_staff_never_see_the_copy_as_a_patient_or_study(self) -> None:
        self.issue(deidentified=True)
        self.login(self.alice)
        page = self.client.get(f"/patients/{self.patient.code}/").content.decode()
        self.assertEqual(page.count("/studies/"), page.count(f"/studies/{self.source.code}/"))
        search = self.client.get("/?q=ANON").content.decode()
        self.assertNotIn("ANON-", search)
        copy = ShareLink.objects.get().study
        self.assertEqual(self.client.get(f"/studies/{copy.code}/").status_code, 404)

    # -- what the recipient gets ---------------------------------------------------------
    def test_nothing_the_recipient_can_reach_names_the_patient(self) -> None:
        issued = self.issue(deidentified=True)
        self.sign_in(issued)
        got = self.reachable(issued.share)
        for where, data in got.items():
            self.assert_clean(data, where)
        for page in ("/s/home/", f"/viewer/studies/{issued.share.study.code}/"):
            self.assertNotIn(b"ANONYMOUS", got[page], page)
            self.assertIn(b"De-identified", got[page], page)
        zf = zipfile.ZipFile(io.BytesIO(got["share.zip"]))
        names = zf.namelist()
        self.assertIn("DICOMDIR", names)
        dicoms = [n for n in names if n != "DICOMDIR" and not n.endswith((".txt", ".html"))]
        self.assertEqual(len(dicoms), 2)  # the burned-in file is left out
        study_uids, series_uids = set(), set()
        for name in names:
            self.assert_clean(name.encode(), f"name {name}")
            self.assert_clean(zf.read(name), f"member {name}")
        for name in dicoms:
            ds = pydicom.dcmread(io.BytesIO(zf.read(name)))
            self.assertEqual(ds.PatientIdentityRemoved, "YES")
            self.assertEqual(str(ds.PatientName), "ANONYMOUS")
            self.assertNotIn(0x00091001, ds)
            study_uids.add(ds.StudyInstanceUID)
            series_uids.add(ds.SeriesInstanceUID)
        # UIDs replaced consistently: still one study of one series, indexed by the DICOMDIR.
        self.assertEqual(len(study_uids), 1)
        self.assertEqual(len(series_uids), 1)
        self.assertNotEqual(study_uids, {self.source.study_uid})
        dicomdir = pydicom.dcmread(io.BytesIO(zf.read("DICOMDIR")))
        dir_uids = {
            r.StudyInstanceUID for r in dicomdir.DirectoryRecordSequence if "StudyInstanceUID" in r
        }
        self.assertEqual(dir_uids, study_uids)
        patients = [
            r for r in dicomdir.DirectoryRecordSequence if r.DirectoryRecordType == "PATIENT"
        ]
        self.assertEqual([str(p.PatientID) for p in patients], [str(ds.PatientID)])
        self.assertEqual([str(p.PatientName) for p in patients], ["ANONYMOUS"])

    def test_dicomweb_serves_the_copy_only(self) -> None:
        issued = self.issue(deidentified=True)
        _, raw = create_token(issued.share)
        auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
        studies = self.client.get("/dicomweb/studies", **auth)
        self.assertEqual(studies.status_code, 200)
        self.assert_clean(studies.content, "QIDO studies")
        uid = studies.json()[0]["0020000D"]["Value"][0]
        for url in (f"/dicomweb/studies/{uid}/metadata", f"/dicomweb/studies/{uid}"):
            r = self.client.get(url, **auth)
            self.assertEqual(r.status_code, 200, url)
            data = b"".join(r.streaming_content) if r.streaming else r.content
            self.assert_clean(data, url)
        r = self.client.get(f"/dicomweb/studies/{self.source.study_uid}", **auth)
        self.assertEqual(r.status_code, 404)
        copy = Instance.objects.filter(series__study=issued.share.study).select_related("series")
        original = Instance.objects.filter(series__study=self.source).select_related("series")
        for instance, study, status in ((copy[0], uid, 200), (original[0], uid, 404)):
            frames = (
                f"/dicomweb/studies/{study}/series/{instance.series.series_uid}"
                f"/instances/{instance.sop_instance_uid}/frames/1"
            )
            self.assertEqual(self.client.get(frames, **auth).status_code, status, frames)

    def test_dates_follow_the_practice_option(self) -> None:
        self.practice.deid_dates = "shift"
        self.practice.save()
        issued = self.issue(deidentified=True)
        self.sign_in(issued)
        zf = zipfile.ZipFile(io.BytesIO(self.body("/s/download/share.zip")))
        name = next(n for n in zf.namelist() if n not in ("DICOMDIR",) and "/" in n)
        ds = pydicom.dcmread(io.BytesIO(zf.read(name)))
        self.assertTrue(ds.StudyDate and ds.StudyDate < "20040119")
        self.assertEqual(ds.DeidentificationMethodCodeSequence[-1].CodeValue, "113107")

    def test_burned_in_files_are_included_with_a_warning_without_clean_pixels(self) -> None:
        self.practice.deid_clean_pixels = False
        self.practice.save()
        issued = self.issue(deidentified=True)
        self.assertEqual(issued.deidentified.included, 3)
        self.assertEqual(len(issued.deidentified.burned_in), 1)
        self.assertEqual(Instance.objects.filter(series__study=issued.share.study).count(), 3)

    # -- the originals stay as they were -------------------------------------------------
    def test_originals_and_a_normal_link_are_untouched(self) -> None:
        self.issue(deidentified=True)
        for instance in Instance.objects.filter(series__study=self.source):
            n = instance.sop_instance_uid.rsplit(".", 2)[-2]
            self.assertEqual(vault.read_bytes(instance.blob), self.originals[f"IM{n}.dcm"])
        normal = self.issue()
        self.sign_in(normal)
        for instance in Instance.objects.filter(series__study=self.source):
            got = self.body(f"/s/download/instances/{instance.code}")
            n = instance.sop_instance_uid.rsplit(".", 2)[-2]
            self.assertEqual(got, self.originals[f"IM{n}.dcm"])
        self.login(self.alice)
        tags = self.client.get(f"/viewer/series/{self.source.series.get().code}/tags/0.json")
        self.assertIn(b"DEID-7", tags.content)

    # -- audit ---------------------------------------------------------------------------
    def test_issue_and_every_access_are_audited_as_deidentified_disclosures(self) -> None:
        issued = self.issue(deidentified=True)
        issue = AccessEvent.objects.get(action=Action.SHARE_ISSUE)
        self.assertEqual(issue.patient_id, self.patient.pk)
        self.assertTrue(issue.detail["deidentified"])
        self.sign_in(issued)
        self.body("/s/download/share.zip")
        events = AccessEvent.objects.filter(share_code=issued.share.code).exclude(
            action=Action.SHARE_ISSUE
        )
        self.assertTrue(events.filter(action=Action.DOWNLOAD).exists())
        for event in events:
            self.assertEqual(event.patient_id, self.patient.pk, event.action)
            self.assertTrue(event.detail.get("deidentified"), event.action)
        from audit.services import verify_chain

        self.assertTrue(verify_chain()[0])
        self.assertFalse(
            AccessEvent.objects.filter(patient__in=Patient.objects.exclude(pk=self.patient.pk))
            .filter(share_code=issued.share.code)
            .exists()
        )

    # -- the copy's life follows the original's --------------------------------------------
    def test_the_patients_accounting_lists_the_deidentified_disclosure(self) -> None:
        from datetime import date

        from portal.compliance.disclosures import account

        self.issue(deidentified=True, recipient_name="Dr Teach")
        entries = account(self.patient, date(2000, 1, 1), date.today())
        self.assertEqual(len(entries), 1)
        self.assertIn("de-identified copy", entries[0].what)
        self.assertIn("Dr Teach", entries[0].recipient)
