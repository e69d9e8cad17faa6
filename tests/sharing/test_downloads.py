from __future__ import annotations

import hashlib
import io
import subprocess
import threading
import zipfile
from datetime import timedelta
from unittest import mock

import pydicom
from django.utils import timezone
from PIL import Image

from audit.models import AccessEvent, Action, Outcome
from portal import vault
from portal.models import Instance
from portal.vault import blobs
from portal.vault.crypto import VaultIntegrityError
from sharing import download_limit
from tests.sharing.helpers import ShareTestCase, add_attachments, close


def body(response) -> bytes:
    return b"".join(response.streaming_content)


class DownloadShareTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.photo, self.pdf = add_attachments(self.study)
        self.sign_in()

    def end_events(self):
        return AccessEvent.objects.filter(action=Action.DOWNLOAD, detail__phase="end")

    def test_share_zip_is_valid_and_byte_identical(self) -> None:
        r = self.client.get("/s/download/share.zip")
        self.assertEqual(r.status_code, 200)
        data = body(r)
        self.assertEqual(int(r["Content-Length"]), len(data))
        self.assertEqual(
            r["Content-Disposition"],
            'attachment; filename="smile-dental-cbct-maxilla-2026-03-04-original-files.zip"',
        )
        zf = zipfile.ZipFile(io.BytesIO(data))
        self.assertIsNone(zf.testzip())
        digests = {hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist()}
        for instance in Instance.objects.all():
            self.assertIn(instance.blob.sha256, digests)
        self.assertIn(self.photo.blob.sha256, digests)
        self.assertIn("README.txt", zf.namelist())

    def test_share_zip_passes_unzip_and_dicomdir_lists_every_instance(self) -> None:
        data = body(self.client.get("/s/download/share.zip"))
        path = self.enterContext(__import__("tempfile").TemporaryDirectory()) + "/s.zip"
        with open(path, "wb") as f:
            f.write(data)
        subprocess.run(["unzip", "-tq", path], check=True, capture_output=True)
        zf = zipfile.ZipFile(io.BytesIO(data))
        dicomdir = pydicom.dcmread(io.BytesIO(zf.read("DICOMDIR")))
        images = [r for r in dicomdir.DirectoryRecordSequence if r.DirectoryRecordType == "IMAGE"]
        uids = {str(r.ReferencedSOPInstanceUIDInFile) for r in images}
        self.assertEqual(uids, set(Instance.objects.values_list("sop_instance_uid", flat=True)))
        for record in images:
            ds = pydicom.dcmread(io.BytesIO(zf.read("/".join(record.ReferencedFileID))))
            self.assertEqual(ds.SOPInstanceUID, record.ReferencedSOPInstanceUIDInFile)

    def test_it_counts_when_streaming_starts_and_audits_the_end(self) -> None:
        close(self.client.get("/s/download/share.zip"))  # closed before its first byte
        self.share.refresh_from_db()
        self.assertEqual(self.share.download_count, 0)
        r = self.client.get("/s/download/share.zip")
        data = body(r)
        self.share.refresh_from_db()
        self.assertEqual(self.share.download_count, 1)
        event = self.end_events().get()
        self.assertEqual(event.detail["bytes"], len(data))
        self.assertTrue(event.detail["complete"])

    def test_a_broken_connection_is_audited_as_incomplete(self) -> None:
        r = self.client.get("/s/download/share.zip")
        next(iter(r.streaming_content))
        close(r)
        event = self.end_events().get()
        self.assertFalse(event.detail["complete"])
        self.assertEqual(event.outcome, Outcome.FAILED)

    def test_a_broken_connection_stops_decrypting(self) -> None:
        r = self.client.get("/s/download/share.zip")
        next(iter(r.streaming_content))
        close(r)
        helpers = [t for t in threading.enumerate() if t.name == "download-prefetch"]
        self.assertEqual(helpers, [])

    def test_a_decrypt_error_aborts_the_stream(self) -> None:
        def broken(obj, start=0, stop=None):
            yield b"x" * 10
            raise VaultIntegrityError("segment failed authentication")

        with mock.patch.object(blobs, "iter_range", broken):
            r = self.client.get("/s/download/share.zip")
            length = int(r["Content-Length"])
            with self.assertRaises(VaultIntegrityError):
                body(r)
        event = self.end_events().get()
        self.assertFalse(event.detail["complete"])
        self.assertLess(event.detail["bytes"], length)

    def test_download_limit(self) -> None:
        self.share.max_downloads = 1
        self.share.save()
        body(self.client.get("/s/download/share.zip"))
        r = self.client.get("/s/download/share.zip")
        self.assertEqual(r.status_code, 403)
        self.assertNotContains(self.client.get("/s/home/"), "/s/download/share.zip")

    def test_downloads_off(self) -> None:
        self.share.allow_download = False
        self.share.save()
        for url in ["/s/download/share.zip", f"/s/download/attachments/{self.photo.code}"]:
            with self.subTest(url=url):
                self.assertEqual(self.client.get(url).status_code, 403)

    def test_series_zip(self) -> None:
        series = self.study.series.get()
        r = self.client.get(f"/s/download/series/{series.code}.zip")
        zf = zipfile.ZipFile(io.BytesIO(body(r)))
        self.assertEqual(sum(n.startswith("DICOM/") for n in zf.namelist()), 2)
        self.assertIn("DICOMDIR", zf.namelist())

    def test_picture_exports(self) -> None:
        series = self.study.series.get()
        series_png = f"/s/download/series/{series.code}/pictures.zip?format=png"
        for url, fmt in [("/s/download/pictures.zip?format=jpeg", "JPEG"), (series_png, "PNG")]:
            with self.subTest(url=url):
                zf = zipfile.ZipFile(io.BytesIO(body(self.client.get(url))))
                pictures = [n for n in zf.namelist() if n.startswith("Images/")]
                self.assertEqual(len(pictures), 2)
                self.assertEqual(Image.open(io.BytesIO(zf.read(pictures[0]))).format, fmt)
        names = zipfile.ZipFile(io.BytesIO(body(self.client.get("/s/download/pictures.zip"))))
        self.assertTrue(any(n.startswith("Photos/") for n in names.namelist()))

    def test_picture_export_renders_one_picture_at_a_time(self) -> None:
        """The export streams: the first bytes leave before the second picture is made."""
        from viewer import render as rnd

        with mock.patch.object(rnd, "render_slice", wraps=rnd.render_slice) as spy:
            r = self.client.get("/s/download/pictures.zip")
            chunks = iter(r.streaming_content)
            first = next(chunks)
            self.assertTrue(first.startswith(b"PK"))
            self.assertEqual(spy.call_count, 1)
            rest = b"".join(chunks)
            self.assertEqual(spy.call_count, 2)
        self.assertIsNone(zipfile.ZipFile(io.BytesIO(first + rest)).testzip())

    def test_too_large_a_picture_export_is_refused_with_a_page(self) -> None:
        with mock.patch("sharing.downloads.EXPORT_MAX_IMAGES", 1):
            r = self.client.get("/s/download/pictures.zip")
        self.assertEqual(r.status_code, 413)
        self.assertContains(r, "Smile Dental", status_code=413)
        self.share.refresh_from_db()
        self.assertEqual(self.share.download_count, 0)

    def test_home_lists_what_was_shared(self) -> None:
        r = self.client.get("/s/home/")
        series = self.study.series.get()
        self.assertContains(r, "Smile Dental")
        self.assertContains(r, f"/viewer/series/{series.code}/thumbnail.jpg")
        self.assertContains(r, f"/viewer/attachments/{self.photo.code}/thumbnail.jpg")
        self.assertContains(r, f"/viewer/attachments/{self.pdf.code}/thumbnail.jpg")
        self.assertContains(r, f"/viewer/studies/{self.study.code}/")
        self.assertContains(r, "/s/download/share.zip")


class RangeTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.photo, _ = add_attachments(self.study)
        self.data = vault.read_bytes(self.photo.blob)
        self.url = f"/s/download/attachments/{self.photo.code}"
        self.sign_in()

    def get(self, range_header: str | None = None, **extra):
        if range_header is not None:
            extra["HTTP_RANGE"] = range_header
        return self.client.get(self.url, **extra)

    def test_full_file_with_rfc6266_name(self) -> None:
        r = self.get()
        self.assertEqual(r.status_code, 200)
        self.assertEqual(body(r), self.data)
        self.assertEqual(r["Accept-Ranges"], "bytes")
        self.assertIn("filename*=UTF-8''smile%20front%20%C3%BC.jpg", r["Content-Disposition"])
        self.assertIn('filename="smile front u.jpg"', r["Content-Disposition"])

    def test_single_ranges(self) -> None:
        n = len(self.data)
        cases = [("bytes=0-9", (0, 10)), ("bytes=10-", (10, n)), ("bytes=-5", (n - 5, n))]
        for header, (a, b) in [*cases, (f"bytes=5-{n + 50}", (5, n))]:
            with self.subTest(header=header):
                r = self.get(header)
                self.assertEqual(r.status_code, 206)
                self.assertEqual(body(r), self.data[a:b])
                self.assertEqual(r["Content-Range"], f"bytes {a}-{b - 1}/{n}")
                self.assertEqual(int(r["Content-Length"]), b - a)

    def test_unsatisfiable_and_multi_ranges_are_416(self) -> None:
        n = len(self.data)
        for header in [f"bytes={n}-", "bytes=0-1,5-9", "bytes=0-5,3-9", "bytes=-0"]:
            with self.subTest(header=header):
                r = self.get(header)
                self.assertEqual(r.status_code, 416)
                self.assertEqual(r["Content-Range"], f"bytes */{n}")

    def test_malformed_ranges_get_the_whole_file(self) -> None:
        for header in ["bytes=abc", "bytes=9-2", "items=0-5", "bytes=-", "bytes=1-2-3", "b" * 500]:
            with self.subTest(header=header[:20]):
                r = self.get(header)
                self.assertEqual(r.status_code, 200)
                self.assertEqual(len(body(r)), len(self.data))

    def test_if_range_mismatch_sends_everything(self) -> None:
        r = self.get("bytes=0-9", HTTP_IF_RANGE='"stale"')
        self.assertEqual(r.status_code, 200)
        r = self.get("bytes=0-9", HTTP_IF_RANGE=f'"{self.photo.blob.sha256}"')
        self.assertEqual(r.status_code, 206)

    def test_a_resume_is_not_counted_again(self) -> None:
        self.share.max_downloads = 1
        self.share.save()
        body(self.get("bytes=0-99"))
        never_read = self.get("bytes=100-")
        self.assertEqual(never_read.status_code, 206)
        close(never_read)
        body(self.get("bytes=100-"))
        self.share.refresh_from_db()
        self.assertEqual(self.share.download_count, 1)
        self.assertEqual(self.get().status_code, 403)

    def test_repeated_resumes_past_the_whole_file_count_as_downloads(self) -> None:
        """`Range: bytes=1-` again and again must not fetch the file past the limit."""
        self.share.max_downloads = 2
        self.share.save()
        self.assertEqual(body(self.get()), self.data)
        self.assertEqual(body(self.get("bytes=1-")), self.data[1:])  # the second download
        self.share.refresh_from_db()
        self.assertEqual(self.share.download_count, 2)
        r = self.get("bytes=1-")
        self.assertEqual(r.status_code, 403)
        self.assertNotIn(self.data[1:], r.content)

    def test_a_download_in_chunks_counts_once(self) -> None:
        """A download manager fetching the file in ranges uses one download of the limit."""
        self.share.max_downloads = 1
        self.share.save()
        n = len(self.data)
        step = n // 3 + 1
        got = b"".join(
            body(self.get(f"bytes={a}-{min(a + step, n) - 1}")) for a in range(0, n, step)
        )
        self.assertEqual(got, self.data)
        self.share.refresh_from_db()
        self.assertEqual(self.share.download_count, 1)
        self.assertEqual(self.get("bytes=5-").status_code, 403)

    def test_a_resume_from_another_browser_counts(self) -> None:
        self.share.max_downloads = 1
        self.share.save()
        body(self.get("bytes=0-99"))
        self.client = self.client_class()
        self.sign_in()
        self.assertEqual(self.get("bytes=100-").status_code, 403)

    def test_a_resume_after_the_window_counts(self) -> None:
        self.share.max_downloads = 2
        self.share.save()
        body(self.get("bytes=0-99"))
        later = timezone.now() + download_limit.RESUME_WINDOW + timedelta(seconds=1)
        with mock.patch.object(download_limit, "_now", return_value=later):
            body(self.get("bytes=100-"))
        self.share.refresh_from_db()
        self.assertEqual(self.share.download_count, 2)

    def test_one_instance(self) -> None:
        instance = Instance.objects.first()
        r = self.client.get(f"/s/download/instances/{instance.code}", HTTP_RANGE="bytes=128-131")
        self.assertEqual(body(r), b"DICM")
        self.assertEqual(r["Content-Type"], "application/dicom")
