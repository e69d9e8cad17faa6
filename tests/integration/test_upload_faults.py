"""Form uploads when the vault's disk is full: a clear answer, nothing kept, no thread waiting.

A file's encryption failed (no space left) while the request kept handing it the rest of the
file: the request waited for ever, holding a web thread, and its form was never answered.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from portal.models import BusinessAssociateAgreement
from sharing.models import ReceivedFile
from tests.base import BaseTestCase, upload_threads
from tests.integration import faults
from tests.sharing.upload_helpers import BOUNDARY, UploadLinkMixin, multipart

MiB = 2**20
PDF = b"%PDF-1.4\n" + os.urandom(4 * MiB) + b"\n%%EOF\n"


class _Hung(Exception):
    pass


def _hung(signum, frame) -> None:  # noqa: ANN001
    raise _Hung


@contextlib.contextmanager
def full_vault(size_kb: int = 1024) -> Iterator[Path]:
    """Put the vault on a small disk; fail the test if a request there is never answered."""
    with faults.small_disk(size_kb) as disk:
        vault = {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(disk)},
        }
        previous = signal.signal(signal.SIGALRM, _hung)
        # After half a minute, every second: each wait a stuck request is in is broken.
        signal.setitimer(signal.ITIMER_REAL, 30, 1)
        try:
            with override_settings(STORAGES={**settings.STORAGES, "vault": vault}):
                yield disk
        except _Hung:
            raise AssertionError("the form was never answered") from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def tempfile_dir() -> Iterator[str]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="portal-spool-") as folder:
        yield folder


def _settled() -> list[str]:
    """Threads the form left inside the upload (none: each stops with its file)."""
    for _ in range(50):
        if not upload_threads():
            break
        time.sleep(0.1)
    return upload_threads()


class FullDiskUploadTestCase(UploadLinkMixin, BaseTestCase):
    def send_report(self):  # noqa: ANN201 - the test client's response
        return self.client.generic(
            "POST",
            "/u/files/",
            multipart("earlier-report.pdf", PDF),
            content_type=f"multipart/form-data; boundary={BOUNDARY}",
        )

    def test_a_send_through_an_upload_link_is_answered_and_keeps_nothing(self) -> None:
        self.verify()
        with full_vault() as disk:
            r = self.send_report()
            self.assertContains(r, "could not be stored", status_code=503)
            self.assertContains(r, 'name="files"', status_code=503)  # the form, to send again
            self.assertEqual([p for p in disk.rglob("*") if p.is_file()], [])
        self.assertFalse(ReceivedFile.objects.exists())
        self.assertEqual(_settled(), [])
        self.link.refresh_from_db()
        self.assertEqual(self.link.received_bytes, 0)

    def test_a_send_whose_kept_copy_does_not_fit_is_answered_and_keeps_nothing(self) -> None:
        # The arriving copy fitted, the copy intake keeps did not: a server error.
        self.verify()
        with full_vault(size_kb=6 * 1024) as disk:
            r = self.send_report()
            self.assertContains(r, "could not be stored", status_code=503)
            self.assertEqual([p for p in disk.rglob("*") if p.is_file()], [])
        self.assertFalse(ReceivedFile.objects.exists())
        self.assertEqual(_settled(), [])
        self.link.refresh_from_db()
        self.assertEqual(self.link.received_bytes, 0)

    def test_a_baa_document_is_answered_and_nothing_is_saved(self) -> None:
        self.alice.is_staff = True
        self.alice.save()
        self.login(self.alice)
        with full_vault() as disk:
            r = self.client.post(
                "/admin/portal/businessassociateagreement/add/",
                {
                    "associate": "Cloud Backup Inc", "services": "Encrypted offsite backup",
                    "signed_on": "2026-01-05", "effective_on": "2026-02-01",
                    "expires_on": "2027-01-31",
                    "signed_document": SimpleUploadedFile("BAA.pdf", PDF, "application/pdf"),
                },
                follow=True,
            )  # fmt: skip
            self.assertContains(r, "could not be stored")
            self.assertEqual([p for p in disk.rglob("*") if p.is_file()], [])
        self.assertFalse(BusinessAssociateAgreement.objects.exists())
        self.assertEqual(_settled(), [])


class ObjectStoreSpoolTestCase(BaseTestCase):
    def test_objects_bound_for_s3_spool_where_the_setting_says(self) -> None:
        # On S3 each object's ciphertext is spooled to a temporary file first: in the
        # compose file's containers that was /tmp, a 64 MiB tmpfs, so a file much over
        # 64 MiB (or a few large ones at once) could never be stored.
        import io

        from portal.vault.blobs import seal
        from tests.portal.s3server import s3_storage_settings

        storage = s3_storage_settings(f"spool-{os.getpid()}-{time.time_ns()}")
        big = os.urandom(20 * MiB)  # past the 16 MiB kept in memory
        with (
            override_settings(STORAGES={**settings.STORAGES, "vault": storage}),
            faults.small_disk(1024) as small,
        ):
            with override_settings(PORTAL_VAULT_SPOOL_DIR=str(small)):
                with self.assertRaises(OSError):
                    seal(io.BytesIO(big))
            roomy = Path(self.enterContext(tempfile_dir()))
            with override_settings(PORTAL_VAULT_SPOOL_DIR=str(roomy)):
                stored = seal(io.BytesIO(big))
        self.assertEqual(stored.plain_size, len(big))
