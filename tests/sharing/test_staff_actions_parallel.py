"""Staff acting twice at once, through gunicorn on PostgreSQL: one action wins.

A double-clicked accept, or a colleague's decline racing it, arrives in separate worker
processes. Whatever the order, the files end either filed (and readable) or shredded, never
filed twice, never filed and shredded, and no request answers 500. A share form sent several
times at once (a double click, a reload) issues one link; a recipient's software-token form
likewise makes one token. Senders' files arriving at once through one upload link keep to its
room, and one file sent several times at once is kept once.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.test import SimpleTestCase

from sharing.models import ReceivedFile
from tests.integration.webclient import WebClient

FILES = 3


@pytest.mark.usefixtures("served_class")
class UploadDecisionsParallelTestCase(SimpleTestCase):
    def staff_clients(self, admin: dict, n: int) -> list[WebClient]:
        """n connections of one signed-in browser (an authenticator code is good only once)."""
        first = WebClient(self.served.base_url, address="198.51.100.70")
        self.assertEqual(first.sign_in_staff(admin), (302, 302))
        self.assertEqual(first.get("/received/").status, 200)
        return first.same_browser(n)

    def decide_at_once(self, link: str, decisions: list[str], admin: dict) -> list[int]:
        clients = self.staff_clients(admin, len(decisions))
        barrier = Barrier(len(decisions))

        def decide(pair: tuple[WebClient, str]) -> int:
            client, decision = pair
            barrier.wait()
            return client.post(f"/received/links/{link}/{decision}/").status

        with ThreadPoolExecutor(len(decisions)) as pool:
            return list(pool.map(decide, zip(clients, decisions, strict=True)))

    def test_parallel_accepts_file_the_files_once(self) -> None:
        data = self.served.setup("received_files", slug="accepts", files=FILES)
        statuses = self.decide_at_once(data["link"], ["accept"] * 4, data["admin"])
        self.assertEqual(statuses, [302] * 4)
        state = self.served.setup("received_state", link=data["link"])
        self.assertEqual(state["states"], ["accepted"] * FILES)
        self.assertEqual((state["instances"], state["readable"]), (FILES, FILES))

    def test_accepts_racing_declines_end_in_one_decision(self) -> None:
        data = self.served.setup("received_files", slug="racing", files=FILES)
        decisions = ["accept", "decline", "accept", "decline"]
        statuses = self.decide_at_once(data["link"], decisions, data["admin"])
        self.assertEqual(statuses, [302] * 4)
        state = self.served.setup("received_state", link=data["link"])
        self.assertIn(state["states"], (["accepted"] * FILES, ["declined"] * FILES))
        if state["states"][0] == "accepted":
            self.assertEqual((state["instances"], state["readable"]), (FILES, FILES))
            self.assertEqual(state["declines_recorded"], 0)
        else:
            self.assertEqual((state["instances"], state["blobs_kept"]), (0, 0))
            self.assertEqual(state["declines_recorded"], 1)


@pytest.mark.usefixtures("served_class")
class ShareFormSentAtOnceTestCase(SimpleTestCase):
    def test_one_form_sent_four_times_at_once_issues_one_link(self) -> None:
        data = self.served.setup("practice_links", links=1, slug="twice")
        study, admin = data["links"][0]["study"], data["admin"]
        first = WebClient(self.served.base_url, address="198.51.100.80")
        self.assertEqual(first.sign_in_staff(admin), (302, 302))
        page = first.get(f"/studies/{study}/").text
        key = re.search(r'name="issue_key" value="([^"]+)"', page).group(1)
        form = {"recipient_kind": "patient", "expires_in_days": "7", "issue_key": key}
        clients = first.same_browser(4)
        barrier = Barrier(len(clients))

        def send(client: WebClient) -> int:
            barrier.wait()
            return client.post(f"/studies/{study}/share/", form).status

        with ThreadPoolExecutor(len(clients)) as pool:
            statuses = sorted(pool.map(send, clients))
        self.assertEqual(statuses, [200, 409, 409, 409])
        # The scenario's link, and this one.
        self.assertEqual(self.served.setup("study_links", study=study), 2)


@pytest.mark.usefixtures("served_class")
class TokenFormSentAtOnceTestCase(SimpleTestCase):
    def verified_recipient(self, slug: str, address: str) -> tuple[dict, WebClient]:
        link = self.served.setup("practice_links", links=1, slug=slug)["links"][0]
        first = WebClient(self.served.base_url, address=address)
        first.get(f"/s/{link['token']}")
        first.get("/s/")
        answer = {"password": link["password"], "birth_date": link["birth_date"]}
        self.assertEqual(first.post("/s/", answer).status, 303)
        return link, first

    def test_one_token_form_sent_four_times_at_once_makes_one_token(self) -> None:
        link, first = self.verified_recipient("tokentwice", "198.51.100.81")
        page = first.get("/s/software/").text
        key = re.search(r'name="issue_key" value="([^"]+)"', page).group(1)
        clients = first.same_browser(4)
        barrier = Barrier(len(clients))

        def send(client: WebClient) -> int:
            barrier.wait()
            return client.post("/s/software/tokens/", {"label": "Weasis", "issue_key": key}).status

        with ThreadPoolExecutor(len(clients)) as pool:
            statuses = sorted(pool.map(send, clients))
        self.assertEqual(statuses, [200, 409, 409, 409])
        self.assertEqual(self.served.setup("link_tokens", code=link["code"]), 1)

    def test_forms_of_eight_open_pages_sent_at_once_make_at_most_five_tokens(self) -> None:
        link, first = self.verified_recipient("tokenmany", "198.51.100.82")
        clients = first.same_browser(8)
        keys = [
            re.search(r'name="issue_key" value="([^"]+)"', c.get("/s/software/").text).group(1)
            for c in clients
        ]
        barrier = Barrier(len(clients))

        def send(n: int) -> int:
            barrier.wait()
            form = {"label": f"viewer {n}", "issue_key": keys[n]}
            return clients[n].post("/s/software/tokens/", form).status

        with ThreadPoolExecutor(len(clients)) as pool:
            statuses = sorted(pool.map(send, range(len(clients))))
        self.assertEqual(statuses, [200] * 5 + [400] * 3)
        self.assertEqual(self.served.setup("link_tokens", code=link["code"]), 5)


@pytest.mark.usefixtures("served_class")
class UploadLinkSendsAtOnceTestCase(SimpleTestCase):
    def test_sends_at_once_keep_to_the_links_room_and_leave_nothing_behind(self) -> None:
        # Six senders' files arrive at once, in both worker processes, on a link with room
        # for three: three are kept and charged, three refused, no answer is a 500, and
        # nothing is left in the vault that no row names.
        reports = [b"%PDF-1.4\n" + bytes([n]) * 20_000 + b"\n%%EOF\n" for n in range(6)]
        data = self.served.setup("upload_link", slug="sends", max_bytes=3 * len(reports[0]))
        first = WebClient(self.served.base_url, address="198.51.100.90")
        first.open_upload_link(data)
        clients = first.same_browser(6)
        barrier = Barrier(len(clients))

        def send(n: int) -> int:
            barrier.wait()
            return clients[n].post_files("/u/files/", [(f"report-{n}.pdf", reports[n])]).status

        with ThreadPoolExecutor(len(clients)) as pool:
            statuses = list(pool.map(send, range(len(clients))))
        # A send that starts once the link is full is refused before it is read (413).
        self.assertEqual(set(statuses) - {200, 413}, set(), statuses)
        state = self.served.setup("upload_link_state", code=data["code"])
        self.assertEqual(state["kept"], [len(reports[0])] * 3)
        self.assertEqual(state["charged"], 3 * len(reports[0]))
        self.assertEqual(len(state["refused"]) + statuses.count(413), 3)
        self.assertTrue(all("no room" in reason for reason in state["refused"]), state)
        self.assertEqual(state["orphans"], 0)


@pytest.mark.usefixtures("served_class")
class SameFileSentAtOnceTestCase(SimpleTestCase):
    def test_one_file_sent_four_times_at_once_is_kept_and_charged_once(self) -> None:
        # A sender double-clicks, or sends from two tabs: the copies arrive together, in
        # both worker processes. One waits for the practice; the others are "already sent".
        report = b"%PDF-1.4\n" + b"once" * 5_000 + b"\n%%EOF\n"
        data = self.served.setup("upload_link", slug="samefile", max_bytes=10 * len(report))
        first = WebClient(self.served.base_url, address="198.51.100.91")
        first.open_upload_link(data)
        clients = first.same_browser(4)
        barrier = Barrier(len(clients))

        def send(client: WebClient) -> int:
            barrier.wait()
            return client.post_files("/u/files/", [("report.pdf", report)]).status

        with ThreadPoolExecutor(len(clients)) as pool:
            statuses = list(pool.map(send, clients))
        self.assertEqual(statuses, [200] * 4)
        state = self.served.setup("upload_link_state", code=data["code"])
        self.assertEqual(state["kept"], [len(report)])
        self.assertEqual(state["charged"], len(report))
        self.assertEqual(state["refused"], [ReceivedFile.ALREADY_SENT] * 3)
        self.assertEqual(state["orphans"], 0)
