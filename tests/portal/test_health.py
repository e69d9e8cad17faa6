"""Liveness and readiness answer without a host, a session or patient data."""

from __future__ import annotations

from unittest import mock

from django.test import TestCase, override_settings

from portal import health


class HealthTestCase(TestCase):
    @override_settings(ALLOWED_HOSTS=["portal.example.com"], SECURE_SSL_REDIRECT=True)
    def test_healthz_answers_a_container_probe(self) -> None:
        r = self.client.get("/healthz", HTTP_HOST="127.0.0.1:8000")
        self.assertEqual((r.status_code, r.json()), (200, {"status": "ok"}))
        self.assertNotIn("Set-Cookie", r.headers)

    @override_settings(ALLOWED_HOSTS=["portal.example.com"], SECURE_SSL_REDIRECT=True)
    def test_readyz_names_each_check(self) -> None:
        r = self.client.get("/readyz", HTTP_HOST="localhost")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(
            r.json(),
            {"status": "ok", "database": "ok", "broker": "ok", "storage": "ok", "cache": "ok",
             "keys": "ok"},
        )  # fmt: skip

    def test_readyz_is_503_and_says_what_is_missing(self) -> None:
        broken = mock.Mock(side_effect=OSError("secret host name in a message"))
        with (
            mock.patch.dict(health.CHECKS, {"storage": broken}),
            self.assertLogs("portal.health", "WARNING") as logs,
        ):
            r = self.client.get("/readyz")
        self.assertEqual(r.status_code, 503)
        self.assertEqual(r.json()["storage"], "unavailable")
        self.assertNotIn("secret host", r.content.decode() + "".join(logs.output))

    def test_a_post_is_not_answered_as_a_probe(self) -> None:
        self.assertNotEqual(self.client.post("/healthz").status_code, 200)
