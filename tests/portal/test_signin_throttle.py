"""Staff sign-in throttle: by username and address, by address, by username for new browsers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, connections
from django.test import TransactionTestCase
from django.utils import timezone

from portal.workspace import signin_throttle
from tests.base import BaseTestCase

WRONG = "wrong-wrong-1"


class SignInThrottleTestCase(BaseTestCase):
    def attempt(self, username: str, password: str, address: str = "203.0.113.9"):
        return self.client.post(
            "/login/", {"username": username, "password": password}, REMOTE_ADDR=address
        )

    def test_a_pair_pauses_after_five_failures_but_another_address_still_works(self) -> None:
        for _ in range(signin_throttle.PAIR_LIMIT):
            self.attempt("bob", WRONG)
        self.assertContains(self.attempt("bob", "correct-horse-42"), "paused", status_code=429)
        self.assertEqual(self.attempt("bob", "correct-horse-42", "198.51.100.4").status_code, 302)

    def test_one_address_spraying_many_usernames_is_stopped(self) -> None:
        for n in range(signin_throttle.ADDRESS_LIMIT):
            self.attempt(f"user{n}", WRONG)
        self.assertEqual(self.attempt("alice", "correct-horse-42").status_code, 429)

    def test_failures_during_a_lockout_do_not_extend_it(self) -> None:
        start = timezone.now()
        with mock.patch.object(signin_throttle, "_now", return_value=start):
            for _ in range(signin_throttle.PAIR_LIMIT):
                self.attempt("bob", WRONG)
        later = start + signin_throttle.WINDOW - timedelta(seconds=5)
        with mock.patch.object(signin_throttle, "_now", return_value=later):
            for _ in range(3):
                self.assertEqual(self.attempt("bob", WRONG).status_code, 429)
        after = start + signin_throttle.WINDOW + timedelta(seconds=1)
        with mock.patch.object(signin_throttle, "_now", return_value=after):
            self.assertEqual(self.attempt("bob", "correct-horse-42").status_code, 302)

    def test_the_practice_admin_sees_and_lifts_a_pause(self) -> None:
        for n in range(signin_throttle.USERNAME_LIMIT):
            self.attempt("bob", WRONG, f"203.0.113.{n + 20}")
        self.login(self.alice)
        self.assertContains(self.client.get("/practice/staff/"), "Sign-in from new browsers paused")
        r = self.client.post("/practice/staff/bob/lift-pause/")
        self.assertRedirects(r, "/practice/staff/", fetch_redirect_response=False)
        self.assertNotContains(self.client.get("/practice/staff/"), "paused")
        self.client.logout()
        self.assertEqual(self.attempt("bob", "correct-horse-42", "198.51.100.9").status_code, 302)

    def test_the_answers_do_not_tell_whether_a_username_exists(self) -> None:
        for name in ("bob", "nobody-here"):
            for _ in range(signin_throttle.PAIR_LIMIT):
                self.attempt(name, WRONG)
        a, b = self.attempt("bob", WRONG), self.attempt("nobody-here", WRONG)
        self.assertEqual((a.status_code, b.status_code), (429, 429))
        sent = [self.client.post("/login/unlock/", {"username": n}) for n in ("bob", "nobody-here")]
        self.assertEqual(
            sent[0].content.replace(b"bob", b"X"), sent[1].content.replace(b"nobody-here", b"X")
        )


class ParallelReservationsTestCase(TransactionTestCase):
    """Guesses sent at once, each in its own connection, as gunicorn's threads send them."""

    def test_parallel_reservations_never_pass_more_than_the_limit(self) -> None:
        if connection.vendor != "postgresql":
            pytest.skip("PostgreSQL only: runs in .ci/run's PostgreSQL pass")
        barrier = threading.Barrier(24)

        def reserve(n: int) -> bool:
            try:
                barrier.wait()
                return signin_throttle.reserve(f"user{n // 24}", f"203.0.113.{50 + n // 24}", "")
            finally:
                connections.close_all()

        for round_ in range(20):
            with ThreadPoolExecutor(24) as pool:
                passed = list(pool.map(reserve, range(round_ * 24, (round_ + 1) * 24)))
            self.assertEqual(passed.count(True), signin_throttle.PAIR_LIMIT, f"round {round_}")
