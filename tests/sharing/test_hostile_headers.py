"""A stored file with an element its VR cannot hold (an IS of "1e9999", an FD of 6 bytes)
still downloads, shows its tags and answers DICOMweb metadata: the element is left out or
shown as unreadable, never a 500, and its raw value never reaches the log."""

from __future__ import annotations

import io
import logging
import warnings

import pydicom
from django.test import Client

from portal.ingest import ingest_files
from portal.models import Series, Study
from sharing.dicomweb.tokens import create_token
from tests.portal.ingest_helpers import dicom_bytes
from tests.sharing.helpers import ShareTestCase, close

SECRET = b"Zebulon"  # in a private element's raw bytes: must never be logged


def hostile(n: int, *, instance_number: bytes = b"999999", private: bool = False) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(n, study="77", patient_id="P-1001",
                                                name="Example^Pat")))  # fmt: skip
    ds.PatientBirthDate = "19800517"
    ds.InstanceNumber = "999999"
    if private:
        ds.add_new(0x00190010, "LO", "VENDOR")
        ds.add_new(0x00191001, "SH", SECRET.decode())
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue().replace(b"IS\x06\x00999999", b"IS\x06\x00" + instance_number)
    if private:  # an FD of 6 bytes (a multiple of 8 would be valid)
        old = b"\x19\x00\x01\x10SH\x08\x00" + SECRET + b" "
        assert old in data
        data = data.replace(old, b"\x19\x00\x01\x10FD\x06\x00" + SECRET[:6])
    return data


class HostileHeaderTestCase(ShareTestCase):
    def _store_and_share(self) -> None:
        files = [hostile(1, instance_number=b"1e9999"), hostile(2, private=True)]
        report = ingest_files(
            [(f"f{i}.dcm", io.BytesIO(b)) for i, b in enumerate(files)],
            practice=self.practice,
            patient=self.pat,
        )
        self.assertEqual([f.status for f in report.files], ["stored", "stored"])
        self.hostile_study = Study.objects.get(study_uid__endswith=".77")
        self.series = Series.objects.get(study=self.hostile_study)
        with self.captureOnCommitCallbacks(execute=True):
            issued = self.issue(study=self.hostile_study)
        self.web = Client(raise_request_exception=False)
        self.sign_in(issued, client=self.web)
        _, self.token = create_token(issued.share)

    def _get(self, url: str, **headers: str) -> tuple[int, bytes]:
        r = self.web.get(url, **headers)
        if r.streaming:
            body = b"".join(r.streaming_content)
            close(r)
        else:
            body = r.content
        return r.status_code, body

    def test_downloads_tags_and_metadata_answer(self) -> None:
        with (
            self.assertLogs(level=logging.DEBUG) as logs,
            warnings.catch_warnings(record=True) as warned,
        ):
            warnings.simplefilter("always")  # a warning goes to stderr, so to the logs
            logging.getLogger(__name__).debug("start")
            self._store_and_share()
            s = self.series.code
            for url in ("/s/download/share.zip", f"/s/download/series/{s}.zip"):
                status, body = self._get(url)
                self.assertEqual(status, 200, url)
                self.assertEqual(body[:2], b"PK", url)
            for index in (0, 1):
                status, body = self._get(f"/viewer/series/{s}/tags/{index}.json")
                self.assertEqual(status, 200, index)
            self.assertIn(b"cannot be shown", body)
            status, body = self._get(
                f"/dicomweb/studies/{self.hostile_study.study_uid}/metadata",
                HTTP_AUTHORIZATION=f"Bearer {self.token}",
            )
            self.assertEqual(status, 200)
            self.assertIn(b'"00100020"', body)  # the rest of the header is there
            self.assertNotIn(b"00191001", body)
        said = [*logs.output, *(str(w.message) for w in warned)]
        quoted = [line for line in said if "Zebul" in line or "1e9999" in line]
        self.assertFalse(quoted, said)
