"""Alerts from the access history, against each practice's thresholds; emails carry no PHI."""

from __future__ import annotations

from django.core import mail
from django.test import RequestFactory

import audit
from audit.models import Action, Outcome
from portal.compliance import alerts
from portal.models import Alert, ComplianceSettings, Patient
from sharing.services import issue_link
from tests.base import BaseTestCase


class AlertsTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.share = issue_link(
            study=self.study, created_by=self.alice, recipient_kind="patient"
        ).share
        ComplianceSettings.objects.create(
            practice=self.practice, downloads_per_hour=3, addresses_per_link=2, patients_per_day=2
        )

    def _as(self, address: str):
        request = RequestFactory().get("/", REMOTE_ADDR=address)
        return request

    def _download(self, address: str = "198.51.100.1") -> None:
        audit.record(
            Action.DOWNLOAD, request=self._as(address), share=self.share, detail={"phase": "start"}
        )

    def _no_phi_in_mail(self) -> None:
        for message in mail.outbox:
            for text in (message.subject, message.body, message.alternatives[0][0]):
                self.assertNotIn("Pat", text)
                self.assertNotIn("P-1001", text)

    def test_a_locked_link_raises_an_alert(self) -> None:
        audit.record(Action.SHARE_LOCK, share=self.share, outcome=Outcome.DENIED)
        [alert] = alerts.scan()
        self.assertEqual((alert.kind, alert.share_code), ("link_locked", self.share.code))
        self.assertEqual(mail.outbox[0].to, ["alice@example.org"])
        self.assertIn(str(self.share.code), mail.outbox[0].body)
        self._no_phi_in_mail()

    def test_downloads_above_the_threshold_in_an_hour(self) -> None:
        for _ in range(3):
            self._download()
        self.assertEqual(alerts.scan(), [])
        self._download()
        [alert] = alerts.scan()
        self.assertEqual((alert.kind, alert.count, alert.threshold), ("downloads", 4, 3))
        self._download()
        self.assertEqual(alerts.scan(), [])  # the same hour is one alert
        self._no_phi_in_mail()

    def test_a_link_used_from_more_addresses_than_allowed(self) -> None:
        self._download("198.51.100.1")
        self._download("198.51.100.2")
        self._download("198.51.100.2")
        self.assertEqual(alerts.scan(), [])
        audit.record(Action.SHARE_OPEN, request=self._as("203.0.113.9"), share=self.share)
        [alert] = alerts.scan()
        self.assertEqual((alert.kind, alert.count, alert.threshold), ("addresses", 3, 2))

    def test_a_staff_member_opening_many_patients_in_a_day(self) -> None:
        for i in range(3):
            patient = Patient.objects.create(practice=self.practice, patient_id=f"X{i}", name="X")
            for _ in range(2):
                audit.record(
                    Action.VIEW_STUDY, user=self.bob, practice=self.practice, patient=patient
                )
            if i == 1:
                self.assertEqual(alerts.scan(), [])
        [alert] = alerts.scan()
        self.assertEqual((alert.kind, alert.user, alert.count), ("patients", self.bob, 3))
        self.assertIn("bob", mail.outbox[0].body)
        self._no_phi_in_mail()

    def test_a_list_of_patients_is_not_opening_them(self) -> None:
        for i in range(3):
            patient = Patient.objects.create(practice=self.practice, patient_id=f"X{i}", name="X")
            audit.record(
                Action.ADMIN_VIEW, user=self.alice, practice=self.practice, patient=patient,
                detail={"page": "list"},
            )  # fmt: skip
        self.assertEqual(alerts.scan(), [])

    def test_acknowledging_keeps_who_and_the_note(self) -> None:
        audit.record(Action.SHARE_LOCK, share=self.share, outcome=Outcome.DENIED)
        [alert] = alerts.scan()
        alerts.acknowledge(alert, by=self.alice, note="Patient mistyped; unlocked after a call.")
        alert.refresh_from_db()
        self.assertEqual(alert.acknowledged_by, self.alice)
        self.assertIsNotNone(alert.acknowledged_at)
        self.assertEqual(Alert.objects.count(), 1)
