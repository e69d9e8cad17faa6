"""The arrivals page tells the front desk how their devices send here.

A CBCT unit's technician asks for the called AE title and the port; the page said only
"Nothing has arrived over DICOM yet".
"""

from __future__ import annotations

from django.test import override_settings

from portal.models import DicomNode, DicomPeer
from tests.base import BaseTestCase


@override_settings(PORTAL_DICOM_PORT=11112, PORTAL_BASE_URL="https://images.smile.example")
class ArrivalsPageTestCase(BaseTestCase):
    def test_it_shows_the_receivers_title_port_and_the_devices_allowed(self) -> None:
        DicomNode.objects.create(practice=self.practice, ae_title="SMILEPACS", tls_port=2762)
        DicomPeer.objects.create(
            practice=self.practice, name="CBCT unit", ae_title="CBCT1", address="10.0.0.7"
        )
        DicomPeer.objects.create(
            practice=self.practice, name="Old PACS", ae_title="OLDPACS", may_send=False
        )
        DicomPeer.objects.create(practice=self.practice_b, name="Elsewhere", ae_title="THEIRS")
        self.login(self.bob)
        page = self.client.get("/arrivals/")
        self.assertContains(page, "SMILEPACS")
        self.assertContains(page, "images.smile.example")
        self.assertContains(page, "11112")
        self.assertContains(page, "2762")  # DICOM TLS
        self.assertContains(page, "CBCT unit")
        self.assertContains(page, "CBCT1")
        self.assertContains(page, "10.0.0.7")
        self.assertNotContains(page, "OLDPACS")  # not allowed to send
        self.assertNotContains(page, "THEIRS")  # another practice's

    def test_without_a_receiver_it_says_who_sets_one_up(self) -> None:
        self.login(self.bob)
        page = self.client.get("/arrivals/")
        self.assertContains(page, "no DICOM receiver set up")
