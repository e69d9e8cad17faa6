"""Parallel opens, verifications and downloads of one practice's links, through gunicorn.

Every request locks rows in one order (the share link's row, then the audit chain head,
never the practice row), so nothing deadlocks, nothing answers 500 and every attempt is
counted once. SQLite serialises all writers and can never show the deadlock: this runs on
PostgreSQL.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.test import SimpleTestCase

from tests.integration.webclient import WebClient

ROUNDS = 2
WRONG_PER_LINK = 2
RIGHT_PER_LINK = 2


@pytest.mark.usefixtures("served_class")
class LockOrderTestCase(SimpleTestCase):
    def journey(self, link: dict, address: str, right: bool, barrier: Barrier) -> list[int]:
        """Open a link, verify (rightly or not), and download what it shares if let in."""
        client = WebClient(self.served.base_url, address=address)
        barrier.wait()
        statuses = [client.get(f"/s/{link['token']}").status]
        statuses.append(client.get("/s/").status)  # the password page sets the CSRF cookie
        answer = {"password": link["password"] if right else "wrong-guess-123"}
        answer["birth_date"] = link["birth_date"]
        statuses.append(client.post("/s/", answer).status)
        if right:
            statuses.append(client.get(f"/s/download/instances/{link['instance']}").status)
            statuses.append(client.get("/s/download/share.zip").status)
        return statuses

    def test_parallel_requests_of_one_practice_never_deadlock_and_count_once(self) -> None:
        links = self.served.setup("practice_links", links=3, slug="lockorder")["links"]
        jobs = []
        for round_ in range(ROUNDS):
            for n, link in enumerate(links):
                for i in range(WRONG_PER_LINK + RIGHT_PER_LINK):
                    address = f"198.51.{100 + round_}.{n * 10 + i + 1}"
                    jobs.append((link, address, i >= WRONG_PER_LINK))
        barrier = Barrier(len(jobs))
        with ThreadPoolExecutor(len(jobs)) as pool:
            results = list(pool.map(lambda job: self.journey(*job, barrier), jobs))
        statuses = [s for result in results for s in result]
        self.assertNotIn(500, statuses, self.served.log()[-4000:])
        for (_link, _address, right), result in zip(jobs, results, strict=True):
            expected = [303, 200, 303, 200, 200] if right else [303, 200, 200]
            self.assertEqual(result, expected)
        self.assertNotIn("deadlock detected", self.served.log())
        counts = self.served.setup("link_counts", codes=[link["code"] for link in links])
        wrong, right = ROUNDS * WRONG_PER_LINK, ROUNDS * RIGHT_PER_LINK
        for link in links:
            got = counts[link["code"]]
            self.assertEqual(got["failures_recorded"], wrong)
            self.assertEqual(got["open_count"], right)
            self.assertEqual(got["download_count"], 2 * right)
            events = got["events"]
            self.assertEqual(events.get("share_open:ok"), wrong + right)
            self.assertEqual(events.get("share_verify:failed"), wrong)
            self.assertEqual(events.get("share_verify:ok"), right)
