"""Parallel wrong guesses from one address cannot outrun the per-address limit."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from unittest import mock

from django.db import connection
from django.test import Client, TransactionTestCase

from portal.models import Patient, Practice, Role
from sharing import verification
from sharing.models import VerificationFailure
from sharing.services import issue_link
from sharing.throttle import ADDRESS_LIMIT
from tests.base import make_ct_study, make_staff

GUESSERS = 16


class ParallelGuessesTestCase(TransactionTestCase):
    def test_guesses_at_links_of_many_practices_at_once_stop_at_the_address_limit(self) -> None:
        clients = []
        for i in range(GUESSERS):
            practice = Practice.objects.create(slug=f"p{i}", name=f"Practice {i}")
            staff = make_staff(f"admin{i}", practice, Role.ADMIN)
            patient = Patient.objects.create(
                practice=practice, patient_id=f"P-{i}", name="Pat", birth_date=date(1980, 5, 17)
            )
            study = make_ct_study(patient, 1, uid_root=f"1.2.826.0.1.3680043.8.498.{i + 10}")
            issued = issue_link(study=study, created_by=staff, recipient_kind="patient")
            client = Client(REMOTE_ADDR="198.51.100.7")
            client.get(issued.path)
            clients.append(client)
        real_check = verification.check_password
        checked = []

        def slow_check(*args, **kwargs) -> bool:
            checked.append(1)
            time.sleep(0.2)  # production's PBKDF2 takes about this long; tests hash with MD5
            return real_check(*args, **kwargs)

        def guess(client: Client) -> int:
            try:
                data = {"password": "wrong-guess-123", "birth_date": "1980-05-17"}
                return client.post("/s/", data).status_code
            finally:
                connection.close()

        with (
            mock.patch.object(verification, "check_password", slow_check),
            ThreadPoolExecutor(GUESSERS) as pool,
        ):
            statuses = list(pool.map(guess, clients))
        # However many arrive at once, the address gets at most its limit of failures; a guess
        # that arrives while an earlier one is being checked waits its turn, and one that comes
        # within the address's delay is told to wait (429) without being checked or counted.
        self.assertGreaterEqual(len(checked), 1)
        self.assertLessEqual(len(checked), ADDRESS_LIMIT + 1, statuses)
        self.assertEqual(statuses.count(200), len(checked), statuses)
        self.assertEqual(statuses.count(429), GUESSERS - len(checked), statuses)
        self.assertEqual(VerificationFailure.objects.count(), len(checked))
