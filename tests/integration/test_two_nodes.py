"""Two web nodes on one PostgreSQL, Redis and object store behave as one portal.

A recipient's session moves between them, wrong answers given to either count toward the same
lock, and a link revoked through one is refused by the other on its very next request, warm
caches and all.
"""

from __future__ import annotations

import pytest
from django.test import SimpleTestCase

from tests.integration.served import served_portal
from tests.integration.webclient import WebClient

LINK_LIMIT = 5


@pytest.fixture(scope="class")
def two_nodes(request, tmp_path_factory) -> None:
    with served_portal(
        tmp_path_factory.mktemp("two-nodes"), workers=1, nodes=2, shared_services=True
    ) as served:
        request.cls.served = served
        yield


@pytest.mark.usefixtures("two_nodes")
class TwoNodesTestCase(SimpleTestCase):
    def verify(self, client: WebClient, link: dict, password: str | None = None) -> int:
        client.get(f"/s/{link['token']}")
        client.get("/s/")
        answer = {"password": password or link["password"], "birth_date": link["birth_date"]}
        return client.post("/s/", answer).status

    def test_a_recipient_session_moves_and_revocation_holds_on_both(self) -> None:
        data = self.served.setup("practice_links", links=1, slug="nodes")
        link, admin = data["links"][0], data["admin"]
        first, second = self.served.base_urls
        on_first = WebClient(first, address="198.51.100.21")
        self.assertEqual(self.verify(on_first, link), 303)
        on_second = WebClient(second, address="198.51.100.21", cookies=on_first.cookies)
        slice_path = f"/viewer/series/{link['series']}/axial/0.jpg"
        self.assertEqual(on_second.get("/s/home/").status, 200)
        for _ in range(3):  # warm: layout and image cached on the second node
            self.assertEqual(on_second.get(slice_path).status, 200)
        self.assertEqual(on_first.get(slice_path).status, 200)
        staff = WebClient(first, address="198.51.100.22")
        self.assertEqual(staff.sign_in_staff(admin), (302, 302))
        staff.get("/shares/")
        revoked = staff.post(f"/shares/{link['code']}/revoke/", {"confirm": "1"})
        self.assertIn(revoked.status, (302, 303))
        self.assertEqual(on_second.get(slice_path).status, 404)
        self.assertEqual(on_first.get(slice_path).status, 404)
        home = on_second.get("/s/home/")
        self.assertIn(home.status, (302, 303))

    def test_wrong_answers_to_either_node_count_toward_one_lock(self) -> None:
        link = self.served.setup("practice_links", links=1, slug="lockednodes")["links"][0]
        statuses = []
        for n in range(LINK_LIMIT):
            base = self.served.base_urls[n % 2]
            client = WebClient(base, address=f"198.51.100.{40 + n}")
            statuses.append(self.verify(client, link, password="wrong-guess-123"))
        self.assertNotIn(500, statuses)
        counts = self.served.setup("link_counts", codes=[link["code"]])[link["code"]]
        self.assertEqual(counts["failed_attempts"], LINK_LIMIT)
        self.assertEqual(counts["failures_recorded"], LINK_LIMIT)
        # Locked for everybody, whichever node they reach, the right answer included.
        for base in self.served.base_urls:
            client = WebClient(base, address="198.51.100.60")
            self.assertEqual(client.get(f"/s/{link['token']}").status, 423)
