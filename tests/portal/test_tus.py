"""The tus 1.0.0 endpoint: create, patch, head, resume after a drop, terminate."""

from __future__ import annotations

import base64
import os

from django.core.files.storage import storages
from django.test import override_settings

from audit.models import AccessEvent, Action
from portal.models import StoredObject, UploadBatch, UploadChunk, UploadSession
from portal.request_bodies import BodyTooSlow
from portal.workspace import tus
from tests.base import BaseTestCase

TUS = {"Tus-Resumable": "1.0.0"}


class _Stalls:
    """A request body that stops arriving after `arrived` (as portal.request_bodies says)."""

    def __init__(self, arrived: bytes) -> None:
        self.left = arrived

    def read(self, size: int = -1) -> bytes:
        if not self.left:
            raise BodyTooSlow("the request body arrived too slowly")
        size = len(self.left) if size is None or size < 0 else size
        data, self.left = self.left[:size], self.left[size:]
        return data

    readline = read


def meta(**items: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


class TusTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.batch = UploadBatch.objects.create(practice=self.practice, created_by=self.bob)
        self.data = os.urandom(300_000)

    def _create(self, length: int | None = None, **extra) -> object:
        headers = {
            **TUS,
            "Upload-Length": str(len(self.data) if length is None else length),
            "Upload-Metadata": meta(
                filename="a.dcm", relativePath="scan/a.dcm", batch=str(self.batch.code)
            ),
            **extra,
        }
        return self.client.post("/upload/tus/", headers=headers)

    def _patch(self, url: str, offset: int, body: bytes, **extra) -> object:
        headers = {**TUS, "Upload-Offset": str(offset), **extra}
        return self.client.patch(
            url, body, content_type="application/offset+octet-stream", headers=headers
        )

    def test_it_announces_its_capabilities(self) -> None:
        self.login(self.bob)
        r = self.client.options("/upload/tus/")
        self.assertEqual(r.status_code, 204)
        self.assertEqual(r["Tus-Version"], "1.0.0")
        self.assertEqual(r["Tus-Extension"], "creation,termination")

    def test_it_creates_patches_and_completes(self) -> None:
        self.login(self.bob)
        r = self._create()
        self.assertEqual(r.status_code, 201)
        url = r["Location"]
        self.assertEqual(self.client.head(url, headers=TUS)["Upload-Offset"], "0")
        r = self._patch(url, 0, self.data)
        self.assertEqual((r.status_code, r["Upload-Offset"]), (204, str(len(self.data))))
        upload = UploadSession.objects.get()
        self.assertEqual(upload.relative_name, "scan/a.dcm")
        self.assertIsNotNone(upload.completed_at)
        self.assertEqual(tus.open_upload(upload).read(), self.data)

    def test_it_resumes_after_a_dropped_connection(self) -> None:
        self.login(self.bob)
        url = self._create()["Location"]
        self._patch(url, 0, self.data[:100_000])  # the connection dropped after these bytes
        offset = int(self.client.head(url, headers=TUS)["Upload-Offset"])
        self.assertEqual(offset, 100_000)
        self.assertEqual(self._patch(url, 0, self.data).status_code, 409)
        self._patch(url, offset, self.data[offset:200_000])
        self._patch(url, 200_000, self.data[200_000:])
        upload = UploadSession.objects.get()
        self.assertEqual(upload.chunks.count(), 3)
        stream = tus.open_upload(upload)
        self.assertEqual(stream.read(), self.data)
        stream.seek(99_990)
        self.assertEqual(stream.read(20), self.data[99_990:100_010])

    def test_a_patch_that_stops_arriving_keeps_what_arrived(self) -> None:
        # portal.request_bodies cut the body off (BodyTooSlow): the bytes before stay, the
        # answer names the offset, and the client resumes from there.
        self.login(self.bob)
        url = self._create()["Location"]
        r = self.client.patch(
            url,
            self.data,
            content_type="application/offset+octet-stream",
            headers={**TUS, "Upload-Offset": "0"},
            **{"wsgi.input": _Stalls(self.data[:100_000])},
        )
        self.assertEqual((r.status_code, r["Upload-Offset"]), (204, "100000"))
        self._patch(url, 100_000, self.data[100_000:])
        self.assertEqual(tus.open_upload(UploadSession.objects.get()).read(), self.data)

    def test_it_keeps_the_staged_bytes_encrypted(self) -> None:
        self.login(self.bob)
        url = self._create()["Location"]
        self._patch(url, 0, self.data)
        blob = UploadChunk.objects.get().blob
        with storages["vault"].open(blob.storage_name) as fh:
            self.assertNotIn(self.data[1000:1064], fh.read())

    def test_it_refuses_protocol_errors(self) -> None:
        self.login(self.bob)
        url = self._create()["Location"]
        self.assertEqual(self.client.head(url).status_code, 412)
        r = self.client.patch(
            url, b"x", content_type="text/plain", headers={**TUS, "Upload-Offset": "0"}
        )
        self.assertEqual(r.status_code, 415)
        self.assertEqual(self._patch(url, 5, b"x").status_code, 409)
        self.assertEqual(self._patch(url, 0, self.data + b"extra").status_code, 413)
        self.assertEqual(UploadSession.objects.get().offset, 0)

    def test_it_refuses_hostile_creation(self) -> None:
        self.login(self.bob)
        cases = [
            {"Upload-Length": "-1"},
            {"Upload-Length": "abc"},
            {"Upload-Metadata": "batch !!notbase64"},
            {"Upload-Metadata": meta(batch="not-a-uuid")},
        ]
        for headers in cases:
            with self.subTest(headers=headers):
                self.assertEqual(self._create(**headers).status_code, 400)
        self.assertFalse(UploadSession.objects.exists())

    @override_settings(PORTAL_MAX_FILE_BYTES=1000)
    def test_it_refuses_a_file_over_the_limit(self) -> None:
        self.login(self.bob)
        self.assertEqual(self._create().status_code, 413)

    def test_it_terminates_and_shreds(self) -> None:
        self.login(self.bob)
        url = self._create()["Location"]
        self._patch(url, 0, self.data[:1000])
        self.assertEqual(self.client.delete(url, headers=TUS).status_code, 204)
        self.assertFalse(UploadSession.objects.exists())
        self.assertFalse(StoredObject.objects.filter(instance__isnull=True).exists())
        self.assertEqual(self.client.head(url, headers=TUS).status_code, 404)

    def test_it_checks_the_owner(self) -> None:
        self.login(self.bob)
        url = self._create()["Location"]
        for user in [self.alice, self.charlie]:
            self.login(user)
            with self.subTest(user=user.username):
                self.assertEqual(self.client.head(url, headers=TUS).status_code, 404)
                self.assertEqual(self._patch(url, 0, b"x").status_code, 404)
        self.login(self.charlie)
        self.assertEqual(self._create().status_code, 404)  # another practice's batch
        denied = AccessEvent.objects.filter(action=Action.ACCESS_DENIED)
        self.assertEqual(denied.filter(user=self.charlie).count(), 3)

    def test_it_redirects_anonymous(self) -> None:
        r = self._create()
        self.assertEqual(r.status_code, 302)
        self.assertFalse(UploadSession.objects.exists())

    def test_it_refuses_get(self) -> None:
        self.login(self.bob)
        self.assertEqual(self.client.get("/upload/tus/").status_code, 405)


class DiscardStaleTestCase(BaseTestCase):
    def test_it_shreds_abandoned_uploads_only(self) -> None:
        from datetime import timedelta

        from django.utils import timezone

        batch = UploadBatch.objects.create(practice=self.practice, created_by=self.bob)
        old = batch.uploads.create(
            practice=self.practice, created_by=self.bob, relative_name="a", length=5
        )
        UploadChunk.objects.create(upload=old, offset=0, size=3, blob=tus.vault.store_bytes(b"abc"))
        UploadSession.objects.filter(pk=old.pk).update(
            created_at=timezone.now() - timedelta(days=3)
        )
        fresh = batch.uploads.create(
            practice=self.practice, created_by=self.bob, relative_name="b", length=5
        )
        self.assertEqual(tus.discard_stale(), 1)
        self.assertEqual(list(UploadSession.objects.all()), [fresh])
        self.assertFalse(UploadChunk.objects.exists())
