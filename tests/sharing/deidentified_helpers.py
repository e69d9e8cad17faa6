"""What the de-identified share tests share: a study with burned-in and private values, the
needles that must never reach its recipient, and a referrer's sign-in."""

from __future__ import annotations

import io
import re

from django.core import mail
from django.test import override_settings

from portal.ingest import ingest_files
from portal.models import Instance, Study
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
class DeidentifiedShareBase(BaseTestCase):
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
