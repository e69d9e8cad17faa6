"""The database rebuilds exactly the bytes the chain hashed, whatever the event holds."""

from __future__ import annotations

from unittest import mock

from django.db import connection
from django.test import RequestFactory

import audit
from audit.chain import canonical_prefix, prefix_sql
from audit.models import AccessEvent, Action, Outcome
from audit.services import client_ip, hashed_values, verify_chain
from tests.base import BaseTestCase


class CanonicalFormTestCase(BaseTestCase):
    def _record(self, address: str, agent: str, detail: dict) -> AccessEvent:
        request = RequestFactory().get("/", REMOTE_ADDR=address, HTTP_USER_AGENT=agent)
        request.user = self.alice
        return audit.record(
            Action.DOWNLOAD,
            request=request,
            patient=self.pat,
            obj=self.study,
            outcome=Outcome.FAILED,
            detail=detail,
        )

    def test_the_database_builds_the_same_prefix_as_python(self) -> None:
        from datetime import UTC, datetime

        self._record("2001:db8::1", "Agent | with 7:pipes|", {"b": [1, 2.5], "a": "ü"})
        self._record("203.0.113.9", "", {})
        with mock.patch("audit.append.timezone.now", return_value=datetime(2026, 1, 2, tzinfo=UTC)):
            audit.record(Action.SEARCH, detail={"nested": {"z": None, "y": True}})
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT seq, {prefix_sql(connection.vendor)} FROM audit_accessevent")  # noqa: S608
            from_sql = dict(cursor.fetchall())
        for event in AccessEvent.objects.all():
            with self.subTest(seq=event.seq):
                self.assertEqual(from_sql[event.seq], canonical_prefix(hashed_values(event)[:-1]))
        self.assertEqual(verify_chain()[0], True)

    def test_an_ipv4_client_over_ipv6_is_recorded_as_ipv4(self) -> None:
        request = RequestFactory().get("/", REMOTE_ADDR="::ffff:198.51.100.7")
        self.assertEqual(client_ip(request), "198.51.100.7")
