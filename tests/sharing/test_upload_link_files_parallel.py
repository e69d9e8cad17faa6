"""Sends arriving at once through one upload link keep to its file limit, through gunicorn on
PostgreSQL: each send counted the link's files before the others were recorded, so four sends
of two files each to a link that takes three recorded eight.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.test import SimpleTestCase

from tests.integration.served import Served, served_portal
from tests.integration.webclient import WebClient

MAX_FILES = 3


@pytest.fixture(scope="module")
def three_files(tmp_path_factory) -> Iterator[Served]:
    with served_portal(
        tmp_path_factory.mktemp("three-files"),
        settings={"PORTAL_UPLOAD_LINK_MAX_FILES": str(MAX_FILES)},
    ) as portal:
        yield portal


@pytest.fixture
def portal(request, three_files: Served) -> None:
    request.cls.served = three_files


@pytest.mark.usefixtures("portal")
class FileLimitAtOnceTestCase(SimpleTestCase):
    served: Served

    def test_sends_at_once_record_no_more_files_than_the_link_takes(self) -> None:
        reports = [b"%PDF-1.4\n" + bytes([n]) * 5_000 + b"\n%%EOF\n" for n in range(8)]
        data = self.served.setup("upload_link", slug="files", max_bytes=100 * len(reports[0]))
        first = WebClient(self.served.base_url, address="198.51.100.95")
        first.open_upload_link(data)
        clients = first.same_browser(4)
        barrier = Barrier(len(clients))

        def send(n: int) -> int:
            barrier.wait()
            files = [(f"report-{2 * n + i}.pdf", reports[2 * n + i]) for i in range(2)]
            return clients[n].post_files("/u/files/", files).status

        with ThreadPoolExecutor(len(clients)) as pool:
            statuses = list(pool.map(send, range(len(clients))))
        # A send that starts once the link has all its files is refused before it is read.
        self.assertEqual(set(statuses) - {200, 413}, set(), statuses)
        state = self.served.setup("upload_link_state", code=data["code"])
        self.assertEqual(len(state["kept"]) + len(state["refused"]), MAX_FILES, state)
        self.assertEqual(state["charged"], sum(state["kept"]))
        self.assertEqual(state["orphans"], 0)
