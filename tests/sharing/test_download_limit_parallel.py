"""A one-download link cannot be stretched with parallel Range requests, through gunicorn."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.test import SimpleTestCase

from tests.integration.webclient import WebClient

PARALLEL = 6


@pytest.mark.usefixtures("served_class")
class DownloadLimitParallelTestCase(SimpleTestCase):
    def verified_client(self, link: dict, address: str) -> WebClient:
        client = WebClient(self.served.base_url, address=address)
        client.get(f"/s/{link['token']}")
        client.get("/s/")
        answer = {"password": link["password"], "birth_date": link["birth_date"]}
        self.assertEqual(client.post("/s/", answer).status, 303)
        return client

    def test_one_counted_byte_then_parallel_resumes_give_the_file_at_most_once(self) -> None:
        """The attack of the probe: `bytes=0-0`, then six `bytes=1-` at once."""
        link = self.served.setup("practice_links", links=1, max_downloads=1, slug="onedl")
        link = link["links"][0]
        client = self.verified_client(link, "198.51.100.61")
        url = f"/s/download/instances/{link['instance']}"
        first = client.get(url, {"Range": "bytes=0-0"})
        self.assertEqual((first.status, len(first.body)), (206, 1))
        barrier = Barrier(PARALLEL)

        def resume(_: int):
            barrier.wait()
            return client.get(url, {"Range": "bytes=1-"})

        with ThreadPoolExecutor(PARALLEL) as pool:
            replies = list(pool.map(resume, range(PARALLEL)))
        rest = [r for r in replies if r.status == 206 and len(r.body) == link["size"] - 1]
        self.assertLessEqual(len(rest), 1, [r.status for r in replies])
        refused = [r for r in replies if r.status == 403]
        self.assertEqual(len(refused) + len(rest), PARALLEL, [r.status for r in replies])
        counts = self.served.setup("link_counts", codes=[link["code"]])[link["code"]]
        self.assertEqual(counts["download_count"], 1)
        # Nor does a later resume of the same session, once the file was delivered whole.
        self.assertEqual(client.get(url, {"Range": "bytes=1-"}).status, 403)

    def test_a_viewers_parallel_first_frames_count_one_download(self) -> None:
        """A DICOMweb viewer fetches its first frames at once: one download, one record."""
        link = self.served.setup("practice_links", links=1, max_downloads=1, slug="frames")
        link = link["links"][0]
        client = self.verified_client(link, "198.51.100.62")

        def new_token() -> str:
            page = client.post("/s/software/tokens/", {"label": "viewer"})
            return re.search(r"Bearer (pst_[A-Za-z0-9_-]+)", page.body.decode()).group(1)

        auth = {"Authorization": f"Bearer {new_token()}"}
        other = {"Authorization": f"Bearer {new_token()}"}
        barrier = Barrier(PARALLEL)

        def frame(_: int):
            barrier.wait()
            return client.get(link["frames"], auth)

        with ThreadPoolExecutor(PARALLEL) as pool:
            replies = list(pool.map(frame, range(PARALLEL)))
        self.assertEqual([r.status for r in replies], [200] * PARALLEL)
        counts = self.served.setup("link_counts", codes=[link["code"]])[link["code"]]
        self.assertEqual(counts["download_count"], 1)
        self.assertEqual(counts["events"].get("download:ok"), 1)
        # The link's one download is spent: another token of it gets no pixel data.
        self.assertEqual(client.get(link["frames"], other).status, 403)
