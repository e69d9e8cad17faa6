"""An upload link's limits on what a sender can make the portal do: files, and a full link."""

from __future__ import annotations

import io
import zipfile
from unittest import mock

from django.test import override_settings

from portal.models import StoredObject
from portal.vault.uploads import VaultUploadHandler
from sharing.models import ReceivedFile, UploadLink
from tests.base import BaseTestCase, vault_files
from tests.sharing.upload_helpers import UploadLinkMixin

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _zip_of_reports(count: int, tag: str) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for n in range(count):
            z.writestr(f"{tag}/{n}.pdf", PDF + f"% {tag} {n}\n".encode())
    return archive.getvalue()


class UploadLinkLimitsTestCase(UploadLinkMixin, BaseTestCase):
    @override_settings(PORTAL_UPLOAD_LINK_MAX_FILES=30)
    def test_a_link_takes_so_many_files_and_says_so(self) -> None:
        # A 567 KB ZIP of 5,000 tiny reports made 5,000 pending files and vault objects,
        # charged 99 KB: bytes were the only limit.
        self.verify()
        objects = StoredObject.objects.count()
        r = self.send(("first.zip", _zip_of_reports(20, "a")))
        self.assertContains(r, "20 files received")
        r = self.send(("second.zip", _zip_of_reports(25, "b")))
        self.assertContains(r, "10 files received")
        self.assertContains(r, "15 more files were not looked at")
        self.assertContains(r, "at most 30 files")
        self.assertEqual(ReceivedFile.objects.filter(link=self.link).count(), 30)
        self.assertEqual(StoredObject.objects.count() - objects, 30)
        r = self.send(("third.pdf", PDF + b"% third\n"))
        self.assertContains(r, "has taken the most files it can (30)", status_code=413)
        self.assertContains(self.client.get("/u/"), '<button type="submit" disabled>Send')
        self.assertEqual(ReceivedFile.objects.filter(link=self.link).count(), 30)

    @override_settings(PORTAL_UPLOAD_LINK_MAX_FILES=1)
    def test_a_send_to_a_link_with_all_its_files_is_not_read(self) -> None:
        self.verify()
        self.send(("first.pdf", PDF))
        with mock.patch.object(VaultUploadHandler, "new_file", side_effect=AssertionError):
            r = self.send(("big.pdf", PDF + b"x" * 3_000_000), ("second.pdf", PDF + b"% 2\n"))
        self.assertContains(r, "the most files it can (1)", status_code=413)

    def test_a_full_link_refuses_a_send_before_reading_it(self) -> None:
        # With no room left, each send was still received and encrypted whole, then refused.
        self.verify()
        UploadLink.objects.filter(pk=self.link.pk).update(max_bytes=1000, received_bytes=1000)
        before = vault_files()
        r = self.send(("report.pdf", PDF))
        self.assertContains(r, "has no room left", status_code=413)
        self.assertContains(r, "ask the practice", status_code=413)
        self.assertEqual(vault_files(), before)
        self.assertFalse(ReceivedFile.objects.exists())
