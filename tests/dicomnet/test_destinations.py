"""Send-onward destinations: the portal never connects to its own host's private addresses.

A practice admin types a destination's address and port; the worker then connects to it.
Loopback, link-local (a cloud's metadata service), multicast and reserved addresses would
let a practice reach or probe the portal's own services, so they are refused when the
device is saved and again when a study is sent. The operator may list the networks
destinations must be in (PORTAL_DICOM_DESTINATION_NETWORKS), loopback included for a tunnel.
"""

from __future__ import annotations

import socket

from django.test import override_settings

from audit.models import AccessEvent, Action, Outcome
from portal.dicomnet import send
from portal.models import DicomPeer, Transfer
from tests.base import BaseTestCase

ADD = "/admin/portal/dicompeer/add/"


def _form(address: str, port: str = "104", **extra: str) -> dict[str, str]:
    return {"name": "Specialist PACS", "ae_title": "SPECPACS", "address": address,
            "port": port, **extra}  # fmt: skip


@override_settings(PORTAL_DICOM_DESTINATION_NETWORKS=[])
class DestinationAddressTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.login_back_office(self.alice)

    def test_a_practice_admin_cannot_make_a_destination_of_the_portals_own_host(self) -> None:
        for address in ("127.0.0.1", "127.10.0.2", "::1", "::ffff:127.0.0.1", "0.0.0.0"):  # noqa: S104
            r = self.client.post(ADD, _form(address))
            self.assertEqual(r.status_code, 200, address)
            self.assertContains(r, "not allowed as a destination")
        self.assertFalse(DicomPeer.objects.exists())

    def test_link_local_and_multicast_addresses_are_refused(self) -> None:
        for address in ("169.254.169.254", "fe80::1", "224.0.0.1", "240.0.0.1",
                        "fd00:ec2::254", "100.100.100.200"):  # fmt: skip
            r = self.client.post(ADD, _form(address, port="80"))
            self.assertContains(r, "not allowed as a destination", msg_prefix=address)
        self.assertFalse(DicomPeer.objects.exists())

    def test_the_practices_own_network_and_the_internet_are_allowed(self) -> None:
        for address in ("192.168.10.20", "10.1.2.3", "203.0.113.7", "2001:db8::7"):
            r = self.client.post(ADD, _form(address))
            self.assertEqual(r.status_code, 302, address)
        self.assertEqual(DicomPeer.objects.filter(port=104).count(), 4)

    def test_a_device_that_only_sends_may_be_on_any_address(self) -> None:
        r = self.client.post(ADD, _form("127.0.0.1", port=""))
        self.assertEqual(r.status_code, 302)
        self.assertFalse(DicomPeer.objects.get().is_destination)

    @override_settings(PORTAL_DICOM_DESTINATION_NETWORKS=["192.168.10.0/24", " 127.0.0.1/32"])
    def test_the_operator_can_limit_destinations_to_listed_networks(self) -> None:
        self.assertEqual(self.client.post(ADD, _form("192.168.10.20")).status_code, 302)
        # Listed on purpose, e.g. a TLS tunnel to a specialist's PACS on this host.
        self.assertEqual(self.client.post(ADD, _form("127.0.0.1")).status_code, 302)
        r = self.client.post(ADD, _form("10.1.2.3"))
        self.assertContains(r, "not allowed as a destination")
        self.assertEqual(DicomPeer.objects.count(), 2)


@override_settings(PORTAL_DICOM_DESTINATION_NETWORKS=[])
class SendingToARefusedAddressTestCase(BaseTestCase):
    """A destination saved before the rule (or the setting changed) is refused at send time."""

    def setUp(self) -> None:
        super().setUp()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.5)
        self.addCleanup(self.listener.close)
        self.dest = DicomPeer.objects.create(
            practice=self.practice,
            name="Probe",
            ae_title="PROBE",
            address="127.0.0.1",
            port=self.listener.getsockname()[1],
            may_send=False,
        )

    def test_the_worker_never_connects_and_the_transfer_fails_with_a_reason(self) -> None:
        transfer = Transfer.objects.create(
            practice=self.practice, study=self.study, destination=self.dest,
            created_by=self.alice, total=2,
        )  # fmt: skip
        send.run(transfer.pk)
        transfer.refresh_from_db()
        self.assertEqual(transfer.status, Transfer.Status.FAILED)
        self.assertIn("not allowed as a destination", transfer.error)
        with self.assertRaises(TimeoutError):
            self.listener.accept()
        event = AccessEvent.objects.get(action=Action.DICOM_SEND, detail__phase="finished")
        self.assertEqual(event.outcome, Outcome.FAILED)

    def test_the_study_page_does_not_offer_it(self) -> None:
        self.login(self.alice)
        r = self.client.get(f"/studies/{self.study.code}/")
        self.assertEqual(r.status_code, 200)
        self.assertNotContains(r, "Probe (PROBE)")
        url = f"/studies/{self.study.code}/send/"
        r = self.client.post(url, {"destination": str(self.dest.code)})
        self.assertEqual(r.status_code, 404)
        self.assertFalse(Transfer.objects.exists())

    def test_a_destination_that_is_not_an_id_is_not_found(self) -> None:
        self.login(self.alice)
        for value in ("not-a-uuid", "1", ""):
            r = self.client.post(f"/studies/{self.study.code}/send/", {"destination": value})
            self.assertEqual(r.status_code, 404, value)
        self.assertFalse(Transfer.objects.exists())
