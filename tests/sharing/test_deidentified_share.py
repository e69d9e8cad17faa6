"""A share link whose recipient gets only a de-identified copy (PS3.15 Annex E basic profile).

Every URL such a recipient can reach is fetched, and nothing in it may name the patient.
"""

from __future__ import annotations

import io
import re
import zipfile

import pydicom
from django.core import mail
from django.test import override_settings

from audit.models import AccessEvent, Action
from portal import vault
from portal.ingest import ingest_files
from portal.models import Instance, Patient, StoredObject, Study
from sharing.dicomweb.tokens import create_token
from sharing.models import ShareLink
from sharing.services import issue_link
from tests.base import BaseTestCase
from tests.dicom_samples import ROOT, identify, sample, to_bytes

PASSWORD = "amber-anchor-apple-arrow-12"
INSTITUTION = b"Sunnyside Orthodontic Institute"
# What must never reach the recipient: name (as stored and as DICOM writes it), ID,
# birth date in both spellings, the accession number, the institution, the study UID.
NEEDLES = (
    b"Fidelity",
    b"Frances",
    b"DEID-7",
    b"19700101",
    b"1970-01-01",
    b"ACC-55521",
    INSTITUTION,
    f"{ROOT}.3".encode(),
)


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
class DeidentifiedShareTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        files = {}
        for n, burned in ((1, "NO"), (2, "NO"), (3, "YES")):
            ds = identify(sample("CT_small.dcm"), n, patient_id="DEID-7", study="3")
            ds.SeriesInstanceUID = f"{ROOT}.3.1"  # one series of three slices
            ds.InstanceNumber = n
            ds.BurnedInAnnotation = burned
            ds.InstitutionName = INSTITUTION.decode()
            ds.AccessionNumber = "ACC-55521"
            ds.StudyDate = "20040119"
            ds.add_new(0x00091001, "LO", "private note")
            files[f"IM{n}.dcm"] = to_bytes(ds)
        self.originals = files
        with self.captureOnCommitCallbacks(execute=False):
            ingest_files([(k, io.BytesIO(v)) for k, v in files.items()], practice=self.practice)
        self.source = Study.objects.get(patient__patient_id="DEID-7")
        self.patient = self.source.patient

    # -- helpers ------------------------------------------------------------------------
    def issue(self, **kwargs):
        kwargs.setdefault("recipient_kind", ShareLink.Recipient.REFERRER)
        kwargs.setdefault("recipient_email", "teacher@example.org")
        return issue_link(study=self.source, created_by=self.alice, password=PASSWORD, **kwargs)

    def sign_in(self, issued) -> None:  # noqa: ANN001
        self.client.get(issued.path)
        mail.outbox.clear()
        self.assertEqual(self.client.post("/s/code/").status_code, 303)
        code = re.search(r"\b(\d{6})\b", mail.outbox[0].body)[1]
        r = self.client.post("/s/", {"password": PASSWORD, "code": code})
        self.assertEqual(r.status_code, 303)

    def body(self, url: str) -> bytes:
        r = self.client.get(url)
        self.assertEqual(r.status_code, 200, url)
        if r.streaming:
            return b"".join(r.streaming_content)
        return r.content

    def assert_clean(self, data: bytes, where: str) -> None:
        for needle in NEEDLES:
            self.assertNotIn(needle, data, f"{needle!r} in {where}")

    def reachable(self, share: ShareLink) -> dict[str, bytes]:
        """Fetch every URL the recipient can reach and return their bodies by URL."""
        got: dict[str, bytes] = {}
        for url in ("/s/home/", f"/viewer/studies/{share.study.code}/", "/s/software/"):
            got[url] = self.body(url)
        for series in share.study.series.all():
            manifest = f"/viewer/series/{series.code}/manifest.json"
            got[manifest] = self.body(manifest)
            for i in range(series.instances.count()):
                for url in (
                    f"/viewer/series/{series.code}/tags/{i}.json",
                    f"/viewer/series/{series.code}/axial/{i}.jpg",
                ):
                    got[url] = self.body(url)
            got[f"thumb {series.code}"] = self.body(f"/viewer/series/{series.code}/thumbnail.jpg")
            got[f"series zip {series.code}"] = self.body(f"/s/download/series/{series.code}.zip")
        for instance in Instance.objects.filter(series__study=share.study):
            url = f"/s/download/instances/{instance.code}"
            got[url] = self.body(url)
        got["share.zip"] = self.body("/s/download/share.zip")
        got["pictures.zip"] = self.body("/s/download/pictures.zip")
        return got

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

    def test_shredding_the_original_shreds_its_copies(self) -> None:
        from portal.compliance.retention import shred_study

        issued = self.issue(deidentified=True)
        copy = issued.share.study
        blobs = [i.blob for i in Instance.objects.filter(series__study=copy)]
        shred_study(self.source)
        self.assertFalse(Study.objects.filter(pk__in=[copy.pk, self.source.pk]).exists())
        self.assertFalse(ShareLink.objects.exists())
        for blob in blobs:
            blob.refresh_from_db()
            self.assertIsNone(blob.wrapped_key)

    def test_staff_list_revoke_and_extend_the_link(self) -> None:
        issued = self.issue(deidentified=True)
        share = issued.share
        self.login(self.alice)
        listing = self.client.get("/shares/").content.decode()
        self.assertIn(f'id="link-{share.code}"', listing)
        self.assertIn("De-identified copy", listing)
        self.assertIn(self.patient.name, listing)  # staff know whose copy it is
        r = self.client.post(f"/shares/{share.code}/extend/", {"days": 3})
        self.assertEqual(r.status_code, 302)
        r = self.client.post(f"/shares/{share.code}/revoke/")
        self.assertEqual(r.status_code, 302)
        share.refresh_from_db()
        self.assertIsNotNone(share.revoked_at)

    def test_a_request_for_a_new_link_leads_staff_to_a_new_deidentified_link(self) -> None:
        from django.utils import timezone

        from sharing.models import LinkRequest

        old = self.issue(deidentified=True).share
        LinkRequest.objects.create(share=old, reason="expired", created_at=timezone.now())
        self.login(self.alice)
        listing = self.client.get("/shares/").content.decode()
        self.assertIn(f"/studies/{self.source.code}/?for=referrer&amp;copy=deidentified", listing)
        page = self.client.get(f"/studies/{self.source.code}/?for=referrer&copy=deidentified")
        self.assertContains(page, 'id="id_deidentified" checked')
        self.issue(deidentified=True)
        self.assertIsNotNone(LinkRequest.objects.get().handled_at)

    # -- a closed link's copy ---------------------------------------------------------------
    def copy_objects(self, share: ShareLink) -> list:
        instances = Instance.objects.filter(series__study=share.study).select_related("blob")
        return [i.blob for i in instances]

    def test_revoking_the_link_shreds_its_copy_and_keeps_the_account(self) -> None:
        from datetime import date

        from portal.compliance.disclosures import account

        with self.captureOnCommitCallbacks(execute=True):  # and its thumbnail and volume
            share = self.issue(deidentified=True, recipient_name="Dr Teach").share
        copies = self.copy_objects(share)
        self.assertTrue(share.study.series.filter(thumbnail__isnull=False).exists())
        originals = [i.blob for i in Instance.objects.filter(series__study=self.source)]
        self.login(self.alice)
        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(f"/shares/{share.code}/revoke/")
        for blob in copies:
            blob.refresh_from_db()
            self.assertIsNone(blob.wrapped_key, "the copy outlived its revoked link")
        for blob in originals:
            blob.refresh_from_db()
            self.assertIsNotNone(blob.wrapped_key)
        self.assertEqual(vault.read_bytes(originals[0])[128:132], b"DICM")
        entries = account(self.patient, date(2000, 1, 1), date.today())
        self.assertEqual(len(entries), 1)  # the disclosure is still accounted for
        self.assertIn("Dr Teach", entries[0].recipient)
        shred = AccessEvent.objects.get(action=Action.SHRED)
        self.assertEqual(shred.detail["reason"], "de-identified copy of a closed link")
        shredded = StoredObject.objects.filter(wrapped_key__isnull=True).count()
        self.assertGreater(shredded, len(copies))  # the thumbnail and ZIP as well
        self.assertEqual(shred.detail["objects"], shredded)

    def test_an_expired_copy_stays_while_the_link_can_be_extended(self) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from portal.compliance import retention

        share = self.issue(deidentified=True).share
        copies = self.copy_objects(share)
        ShareLink.objects.filter(pk=share.pk).update(expires_at=timezone.now() - timedelta(1))
        self.assertEqual(retention.enforce().copies, 0)  # staff may still extend it
        self.assertIsNotNone(Instance.objects.filter(series__study=share.study)[0].blob.wrapped_key)
        issued_long_ago = timezone.now() - timedelta(days=self.practice.share_max_days + 1)
        ShareLink.objects.filter(pk=share.pk).update(created_at=issued_long_ago)
        self.assertEqual(retention.enforce().copies, 1)
        self.assertEqual(retention.enforce().copies, 0)  # once
        for blob in copies:
            blob.refresh_from_db()
            self.assertIsNone(blob.wrapped_key)

    def test_a_link_whose_copy_was_removed_cannot_be_extended(self) -> None:
        from portal.deidentified_copy import dispose

        share = self.issue(deidentified=True).share
        dispose(share.study)
        self.login(self.alice)
        r = self.client.post(f"/shares/{share.code}/extend/", {"days": 3}, follow=True)
        self.assertContains(r, "copy made for this link was removed")

    def test_a_live_link_keeps_its_copy_when_the_practice_shortens_its_maximum(self) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from portal.compliance import retention

        share = self.issue(deidentified=True, expires_in_days=7).share
        ShareLink.objects.filter(pk=share.pk).update(created_at=timezone.now() - timedelta(3))
        self.practice.share_max_days = 1  # links issued from now on live a day at most
        self.practice.save()
        self.assertEqual(retention.enforce().copies, 0)
        blob = Instance.objects.filter(series__study=share.study)[0].blob
        self.assertIsNotNone(blob.wrapped_key, "the copy of a link still open was shredded")
