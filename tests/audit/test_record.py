"""audit.record(): append-only, hash-chained, never carries secrets."""

from __future__ import annotations

from django.test import RequestFactory, TestCase

import audit
from audit.models import Action
from audit.services import verify_chain
from tests.base import BaseTestCase


class RecordTestCase(BaseTestCase):
    def test_it_chains_events(self) -> None:
        a = audit.record(Action.VIEW_STUDY, user=self.alice, obj=self.study, patient=self.pat)
        b = audit.record(Action.DOWNLOAD, user=self.alice, obj=self.study, patient=self.pat)
        self.assertEqual(b.prev_hash, a.hash)
        self.assertEqual(verify_chain()[0], True)

    def test_it_numbers_events_and_binds_the_head(self) -> None:
        from audit.chain import head_mac
        from audit.models import ChainHead

        first = audit.record(Action.VIEW_STUDY, user=self.alice)
        second = audit.record(Action.DOWNLOAD, user=self.alice)
        head = ChainHead.objects.get()
        self.assertEqual((first.seq, second.seq, head.seq), (1, 2, 2))
        self.assertEqual(head.last_hash, second.hash)
        self.assertEqual(head.mac, head_mac(2, second.hash))

    def test_a_link_event_names_its_practice_and_patient_without_reading_them(self) -> None:
        """A download records its start while holding the link's row: no extra reads there."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from sharing.models import ShareLink
        from sharing.services import issue_link

        issued = issue_link(
            study=self.study, created_by=self.alice, recipient_kind=ShareLink.Recipient.PATIENT
        )
        share = ShareLink.objects.get(pk=issued.share.pk)  # nothing related loaded
        with CaptureQueriesContext(connection) as queries:
            event = audit.record(Action.DOWNLOAD, share=share, obj=self.study)
        read = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
        self.assertFalse([s for s in read if "portal_patient" in s or "portal_practice" in s])
        self.assertEqual((event.practice_id, event.patient_id), (self.practice.pk, self.pat.pk))
        self.assertEqual(verify_chain()[0], True)

    def test_it_refuses_secrets_in_detail(self) -> None:
        for key in ("token", "password", "code"):
            with self.subTest(key=key), self.assertRaises(ValueError):
                audit.record(Action.SHARE_VERIFY, detail={key: "x"})

    def test_it_records_who_from_where(self) -> None:
        request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="UA/1")
        request.user = self.alice
        event = audit.record(Action.SEARCH, request=request)
        self.assertEqual(
            (event.user, event.ip_address, event.user_agent), (self.alice, "203.0.113.9", "UA/1")
        )


class AdminEditsTestCase(TestCase):
    def test_practice_edits_are_logged_by_auditlog(self) -> None:
        from auditlog.models import LogEntry

        from portal.models import Practice

        practice = Practice.objects.create(slug="x", name="X Dental")
        practice.share_max_days = 10
        practice.save()
        self.assertEqual(LogEntry.objects.get_for_object(practice).count(), 2)


class ClientAddressTestCase(TestCase):
    def _ip(self, forwarded: str, **settings) -> str | None:
        from django.test import override_settings

        from audit.services import client_ip

        request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
        with override_settings(**settings):
            return client_ip(request)

    def test_it_ignores_forwarded_for_unless_configured(self) -> None:
        self.assertEqual(self._ip("198.51.100.7", USE_X_FORWARDED_FOR=False), "10.0.0.2")

    def test_it_takes_the_entry_the_trusted_proxy_appended(self) -> None:
        """A client-written leftmost entry cannot choose the address the throttles count."""
        ip = self._ip("1.2.3.4, 198.51.100.7", USE_X_FORWARDED_FOR=True)
        self.assertEqual(ip, "198.51.100.7")
        ip = self._ip(
            "1.2.3.4, 198.51.100.7, 10.0.0.9", USE_X_FORWARDED_FOR=True, PORTAL_TRUSTED_PROXY_HOPS=2
        )
        self.assertEqual(ip, "198.51.100.7")

    def test_it_drops_garbage(self) -> None:
        self.assertIsNone(self._ip("not-an-address", USE_X_FORWARDED_FOR=True))
