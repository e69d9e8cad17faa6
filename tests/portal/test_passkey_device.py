"""A passkey sign-in makes the browser one its owner signs in from, as a code does: a stranger's
lockout of the username spares it (issue 11, finding 2). The assertion is really signed."""

from __future__ import annotations

import base64
import hashlib
import json
import struct

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django_otp_webauthn.models import WebAuthnCredential

from portal.workspace import signin_throttle
from tests.base import BaseTestCase

HOST, ORIGIN = "localhost:8000", "http://localhost:8000"
WRONG = "wrong-wrong-1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Authenticator:
    """A P-256 passkey: its public half registered for the user, its private half signs."""

    def __init__(self, user) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        numbers = self.key.public_key().public_numbers()
        cose = {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big")}  # fmt: skip
        self.credential_id = b"bob-phone-passkey"
        self.count = 0
        WebAuthnCredential.objects.create(
            user=user, name="Phone", credential_id=self.credential_id,
            public_key=cbor2.dumps(cose), confirmed=True,
        )  # fmt: skip

    def assertion(self, challenge: str) -> dict:
        self.count += 1
        client_data = json.dumps(
            {"type": "webauthn.get", "challenge": challenge, "origin": ORIGIN}
        ).encode()
        flags = 0x01 | 0x04  # user present, user verified
        auth_data = hashlib.sha256(b"localhost").digest() + bytes([flags])
        auth_data += struct.pack(">I", self.count)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
            },
        }


class PasskeyTrustedDeviceTestCase(BaseTestCase):
    def password(self, address: str):
        return self.client.post(
            "/login/", {"username": "bob", "password": "correct-horse-42"},
            REMOTE_ADDR=address, headers={"host": HOST},
        )  # fmt: skip

    def passkey(self, authenticator: Authenticator):
        begun = self.client.post("/webauthn/authentication/begin/", headers={"host": HOST})
        self.assertEqual(begun.status_code, 200, begun.content)
        return self.client.post(
            "/webauthn/authentication/complete/",
            json.dumps(authenticator.assertion(begun.json()["challenge"])),
            content_type="application/json",
            headers={"host": HOST},
        )

    def test_a_browser_signed_in_with_a_passkey_is_spared_a_strangers_lockout(self) -> None:
        authenticator = Authenticator(self.bob)
        self.assertEqual(self.password("198.51.100.200").status_code, 302)
        done = self.passkey(authenticator)
        self.assertEqual(done.status_code, 200, done.content)
        self.assertTrue(self.client.get("/", headers={"host": HOST}).status_code == 200)
        cookie = signin_throttle.device_cookie_name()
        self.assertIn(cookie, done.cookies)
        self.client.post("/logout/", headers={"host": HOST})
        self.assertEqual(self.client.cookies[cookie].value, done.cookies[cookie].value)

        for n in range(signin_throttle.USERNAME_LIMIT):  # strangers, each from its own address
            stranger = self.client_class()
            stranger.post(
                "/login/", {"username": "bob", "password": WRONG},
                REMOTE_ADDR=f"203.0.113.{n + 1}", headers={"host": HOST},
            )  # fmt: skip
        fresh = self.client_class()
        paused = fresh.post(
            "/login/", {"username": "bob", "password": "correct-horse-42"},
            REMOTE_ADDR="198.51.100.77", headers={"host": HOST},
        )  # fmt: skip
        self.assertEqual(paused.status_code, 429)  # a browser bob never used is paused

        reply = self.password("198.51.100.201")  # bob's usual browser, from another address
        self.assertEqual(reply.status_code, 302, reply.content[-400:])
        self.assertIn("/login/verify/", reply["Location"])
        self.assertEqual(self.passkey(authenticator).status_code, 200)
