"""A one-download link cannot be stretched with parallel Range requests, through gunicorn."""

from __future__ import annotations

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
