"""A stranger who knows a staff username cannot keep its owner out (through gunicorn)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import SimpleTestCase
from django_otp.oath import totp

from tests.integration.webclient import WebClient

STRANGERS = 12


@pytest.mark.usefixtures("served_class")
class SignInLockoutServedTestCase(SimpleTestCase):
    def password(self, client: WebClient, username: str, password: str):
        client.get("/login/")
        return client.post("/login/", {"username": username, "password": password})

    def test_wrong_passwords_from_many_addresses_do_not_lock_the_owner_out(self) -> None:
        staff = self.served.setup("staff", username="dora.lockout", email="dora@example.org")
        owner = WebClient(self.served.base_url, address="198.51.100.200")
        self.assertEqual(self.password(owner, staff["username"], staff["password"]).status, 302)
        code = f"{totp(bytes.fromhex(staff['totp_key'])):06d}"
        self.assertEqual(owner.post("/login/verify/", {"token": code}).status, 302)
        device = {k: v for k, v in owner.cookies.items() if k.endswith("portal_device")}
        self.assertTrue(device)

        def stranger(n: int) -> int:
            client = WebClient(self.served.base_url, address=f"203.0.113.{n + 1}")
            return self.password(client, staff["username"], "wrong-guess-123").status

        with ThreadPoolExecutor(STRANGERS) as pool:
            statuses = list(pool.map(stranger, range(STRANGERS)))
        statuses.append(stranger(STRANGERS))
        self.assertNotIn(500, statuses)
        self.assertEqual(statuses[-1], 429)  # the username is paused for browsers it never used

        # The owner's usual browser, from yet another address, signs in as ever.
        usual = WebClient(self.served.base_url, address="198.51.100.201", cookies=dict(device))
        reply = self.password(usual, staff["username"], staff["password"])
        self.assertEqual(reply.status, 302, reply.text[-500:])
        self.assertIn("/login/verify/", reply.header("Location"))

        # A new browser of the owner is paused, and gets in through the emailed link.
        new = WebClient(self.served.base_url, address="198.51.100.202")
        paused = self.password(new, staff["username"], staff["password"])
        self.assertEqual(paused.status, 429)
        self.assertIn("Email me a sign-in link", paused.text)
        self.assertEqual(new.post("/login/unlock/", {"username": staff["username"]}).status, 200)
        mails = "".join(p.read_text() for p in (self.served.data_dir / "mail").glob("*"))
        path = re.findall(r"https://127\.0\.0\.1(/login/unlock/\S+/)", mails)[-1]
        self.assertEqual(new.get(path).status, 200)
        self.assertEqual(new.post(path).status, 302)
        self.assertEqual(new.post(path).status, 410)  # once only
        reply = self.password(new, staff["username"], staff["password"])
        self.assertEqual(reply.status, 302)
        self.assertIn("/login/verify/", reply.header("Location"))

    def test_parallel_guesses_from_one_address_get_no_more_than_the_limit_checked(self) -> None:
        """Guesses sent at once are counted before any password is checked: the sixth waits."""
        staff = self.served.setup("staff", username="erin.parallel", email="erin@example.org")
        clients = [WebClient(self.served.base_url, address="203.0.113.77") for _ in range(16)]
        for client in clients:
            client.get("/login/")

        def guess(client: WebClient) -> int:
            return client.post(
                "/login/", {"username": staff["username"], "password": "wrong-guess-123"}
            ).status

        with ThreadPoolExecutor(len(clients)) as pool:
            statuses = list(pool.map(guess, clients))
        self.assertNotIn(500, statuses)
        self.assertEqual(statuses.count(200), 5, statuses)  # PAIR_LIMIT passwords checked
        self.assertEqual(statuses.count(429), len(clients) - 5, statuses)
