"""An upload-link send is encrypted as it arrives: never held whole in a web process's memory."""

from __future__ import annotations

import os
import tracemalloc

from sharing.models import ReceivedFile
from tests.base import BaseTestCase, upload_threads, vault_files
from tests.sharing.upload_helpers import BOUNDARY, UploadLinkMixin, multipart

MiB = 2**20


class SendMemoryTestCase(UploadLinkMixin, BaseTestCase):
    def test_a_large_send_is_kept_without_holding_it_in_memory(self) -> None:
        # Sends were kept in memory up to 512 MiB each: a few senders at once could take a
        # web process's memory. The request body itself (the client's copy) is counted once.
        self.verify()
        report = b"%PDF-1.4\n" + os.urandom(32 * MiB) + b"\n%%EOF\n"
        body = multipart("earlier-report.pdf", report)
        before = vault_files()
        tracemalloc.start()
        try:
            r = self.client.generic(
                "POST", "/u/files/", body, content_type=f"multipart/form-data; boundary={BOUNDARY}"
            )
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertEqual(r.status_code, 200)
        row = ReceivedFile.objects.get(link=self.link)
        self.assertEqual((row.state, row.size), ("pending", len(report)))
        # Beyond the body: fixed buffers (a window, two threads' encryption rings), not the file.
        self.assertLess(peak, len(body) + 16 * MiB, f"peak {peak / MiB:.0f} MiB")
        # What arrived was encrypted on its way in; only the kept file stays in the vault.
        self.assertEqual(vault_files() - before, {row.blob.storage_name})
        self.assertEqual(upload_threads(), [])  # nothing of the send is left running

    def test_a_refused_send_leaves_nothing_in_the_vault(self) -> None:
        self.verify()
        before = vault_files()
        r = self.client.generic(
            "POST",
            "/u/files/",
            multipart("notes.txt", b"not an image " * 100_000),
            content_type=f"multipart/form-data; boundary={BOUNDARY}",
        )
        self.assertEqual(r.status_code, 200)
        self.assertEqual(ReceivedFile.objects.get(link=self.link).state, "refused")
        self.assertEqual(vault_files(), before)

    def test_a_send_broken_midway_leaves_no_file_and_no_waiting_thread(self) -> None:
        # A part that cannot be decoded stops the form's parser inside a file: the thread
        # encrypting that file waited for the rest forever, and its partial file stayed.
        self.verify()
        before = vault_files()
        part = multipart("a.dcm", b"QUJD" * 100_000 + b"not base64!")
        body = part.replace(b"Content-Type: application/pdf", b"Content-Transfer-Encoding: base64")
        r = self.client.generic(
            "POST", "/u/files/", body, content_type=f"multipart/form-data; boundary={BOUNDARY}"
        )
        self.assertContains(r, "could not be read", status_code=400)
        self.assertEqual(upload_threads(), [])
        self.assertEqual(vault_files(), before)
        self.assertFalse(ReceivedFile.objects.exists())


class ArrivingFileTestCase(BaseTestCase):
    def test_an_empty_chunk_inside_a_file_does_not_end_it(self) -> None:
        # The form parser hands over an empty chunk for a base64 run of padding: the file's
        # encryption took it for the end and kept the file cut short.
        from portal.vault.blobs import discard_unsaved, read_bytes
        from portal.vault.uploads import VaultUploadHandler

        handler = VaultUploadHandler(None, 1000)
        handler.new_file("files", "r.pdf", "application/pdf", 6)
        for chunk in (b"abc", b"", b"def"):
            handler.receive_data_chunk(chunk, 0)
        upload = handler.file_complete(6)
        try:
            self.assertEqual(read_bytes(upload.stored), b"abcdef")
        finally:
            discard_unsaved(upload.stored)
