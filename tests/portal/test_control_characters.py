"""Names and texts people type or send are refused with a clear message if they hold control
characters (a NUL byte, an escape sequence, a line break in a name, a bidi override)."""

from __future__ import annotations

from portal.models import UploadBatch, UploadSession
from sharing.models import ShareLink
from tests.base import BaseTestCase
from tests.portal.test_tus import TUS, meta

HOSTILE = ["scan\x00.dcm", "Dr \x1b[31mEvil", "two\nlines", "photo\u202egpj.exe", "bell\x07"]
MESSAGE = "invisible control characters"


class ControlCharactersTestCase(BaseTestCase):
    def test_upload_file_names(self) -> None:
        self.login(self.bob)
        batch = UploadBatch.objects.create(practice=self.practice, created_by=self.bob)
        for name in HOSTILE:
            with self.subTest(name=name):
                headers = {
                    **TUS,
                    "Upload-Length": "10",
                    "Upload-Metadata": meta(filename=name, batch=str(batch.code)),
                }
                r = self.client.post("/upload/tus/", headers=headers)
                self.assertEqual(r.status_code, 400)
                self.assertIn(MESSAGE, r.content.decode())
        self.assertFalse(UploadSession.objects.exists())

    def test_recipient_names(self) -> None:
        self.login(self.alice)
        for name in HOSTILE:
            with self.subTest(name=name):
                data = {"recipient_kind": "patient", "expires_in_days": 7, "recipient_name": name}
                r = self.client.post(f"/studies/{self.study.code}/share/", data)
                self.assertContains(r, MESSAGE, status_code=400)
        self.assertFalse(ShareLink.objects.exists())

    def test_staff_names(self) -> None:
        self.login(self.alice)
        for name in HOSTILE:
            with self.subTest(name=name):
                data = {"username": "erin", "full_name": name, "email": "e@example.org"}
                r = self.client.post("/practice/staff/new/", {**data, "role": "clinician"})
                self.assertContains(r, MESSAGE, status_code=400)

    def test_searches(self) -> None:
        self.login(self.bob)
        for text in HOSTILE:
            with self.subTest(text=text):
                self.assertContains(self.client.post("/", {"q": text}), MESSAGE, status_code=400)

    def test_sign_in_names(self) -> None:
        for name in HOSTILE:
            with self.subTest(name=name):
                r = self.client.post("/login/", {"username": name, "password": "x" * 12})
                self.assertContains(r, MESSAGE)
