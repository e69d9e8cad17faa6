"""DICOM TLS: a practice's own listener with its certificate, optionally requiring the sender's."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import tempfile
import threading
from pathlib import Path

import pydicom
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.test import TransactionTestCase
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from portal.models import Instance, Practice
from tests.dicomnet.helpers import configure, free_port, receiving
from tests.dicomnet.test_receiver import SMALL, phantom


def _cert(name: str, key, issuer_name=None, issuer_key=None, ca: bool = False):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _write(folder: Path, name: str, cert, key) -> tuple[str, str]:
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


class DicomTlsTestCase(TransactionTestCase):
    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="dicom-tls-"))
        ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _cert("Practice CA", ca_key, ca=True)
        self.ca_path, _ = _write(self.tmp, "ca", self.ca, ca_key)
        server_key = ec.generate_private_key(ec.SECP256R1())
        server = _cert("receiver", server_key, self.ca.subject, ca_key)
        cert_path, key_path = _write(self.tmp, "server", server, server_key)
        client_key = ec.generate_private_key(ec.SECP256R1())
        client = _cert("cbct", client_key, self.ca.subject, ca_key)
        self.client_cert, self.client_key = _write(self.tmp, "client", client, client_key)
        self.practice = Practice.objects.create(slug="smile", name="Smile Dental")
        self.node, _ = configure(self.practice)
        self.node.tls_port = free_port()
        self.node.tls_certificate, self.node.tls_private_key = cert_path, key_path
        self.node.save()

    def scu(self, with_certificate: bool = False):
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_path)
        if with_certificate:
            context.load_cert_chain(self.client_cert, self.client_key)
        ae = AE(ae_title="CBCT1")
        ae.add_requested_context(Verification)
        ae.add_requested_context(CTImageStorage, pydicom.uid.ExplicitVRLittleEndian)
        return ae, (context, "127.0.0.1")

    def test_it_receives_over_tls_with_the_practices_certificate(self) -> None:
        path = phantom(self.tmp / "cbct", geometry=SMALL)[0]
        with receiving(tls_nodes=[self.node]):
            ae, tls = self.scu()
            assoc = ae.associate(
                "127.0.0.1", self.node.tls_port, ae_title="SMILEPACS", tls_args=tls
            )
            self.assertTrue(assoc.is_established)
            self.assertEqual(assoc.send_c_echo().Status, 0)
            self.assertEqual(assoc.send_c_store(pydicom.dcmread(path)).Status, 0)
            assoc.release()
            plain = ae.associate("127.0.0.1", self.node.tls_port, ae_title="SMILEPACS")
            self.assertFalse(plain.is_established)
        self.assertEqual(Instance.objects.count(), 1)

    def test_it_requires_a_sender_certificate_when_the_practice_says_so(self) -> None:
        self.node.tls_client_ca = self.ca_path
        self.node.save()
        with receiving(tls_nodes=[self.node]):
            ae, tls = self.scu()
            anonymous = ae.associate(
                "127.0.0.1", self.node.tls_port, ae_title="SMILEPACS", tls_args=tls
            )
            self.assertFalse(anonymous.is_established)
            ae, tls = self.scu(with_certificate=True)
            known = ae.associate(
                "127.0.0.1", self.node.tls_port, ae_title="SMILEPACS", tls_args=tls
            )
            self.assertTrue(known.is_established)
            known.release()

    def test_a_practice_that_requires_sender_certificates_is_not_reached_in_plain(self) -> None:
        self.node.tls_client_ca = self.ca_path
        self.node.save()
        with receiving(tls_nodes=[self.node]) as plain_port:
            ae, _ = self.scu()
            assoc = ae.associate("127.0.0.1", plain_port, ae_title="SMILEPACS")
            self.assertTrue(assoc.is_rejected, "the plain port let a sender skip its certificate")
        self.assertFalse(Instance.objects.exists())

    def test_the_tls_port_serves_only_its_own_practice(self) -> None:
        other = Practice.objects.create(slug="other", name="Other Dental")
        configure(other, called="OTHERPACS")
        with receiving(tls_nodes=[self.node]):
            ae, tls = self.scu()
            assoc = ae.associate(
                "127.0.0.1", self.node.tls_port, ae_title="OTHERPACS", tls_args=tls
            )
            self.assertTrue(assoc.is_rejected)
            self.assertEqual(assoc.acceptor.primitive.diagnostic, 0x07)

    def test_a_connection_that_never_starts_tls_does_not_hold_up_the_others(self) -> None:
        with receiving(tls_nodes=[self.node]):
            silent = socket.create_connection(("127.0.0.1", self.node.tls_port))
            try:
                ae, tls = self.scu()
                answered = []

                def associate() -> None:
                    answered.append(
                        ae.associate(
                            "127.0.0.1", self.node.tls_port, ae_title="SMILEPACS", tls_args=tls
                        )
                    )

                sender = threading.Thread(target=associate, daemon=True)
                sender.start()
                sender.join(30)  # a port held up by the silent one never answers
                self.assertTrue(answered, "a silent connection held up the port")
                self.assertTrue(answered[0].is_established)
                answered[0].release()
            finally:
                silent.close()
