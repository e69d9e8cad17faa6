"""Production refuses to start without its secrets; with them, check --deploy is clean."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEY = "k1:" + base64.b64encode(b"\x01" * 32).decode()


def _manage(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAL_", "DATABASE_URL", "SECRET_KEY", "DJANGO_"))
    }
    base.update({"PORTAL_DATA_DIR": str(tmp_path / "data")})
    base.update(env)
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRODUCTION = {
    "PORTAL_MODE": "production",
    "SECRET_KEY": "a-production-secret-key-that-is-long-enough-and-random-0123456789abcdef",
    "PORTAL_KEYS": KEY,
    "ALLOWED_HOSTS": "portal.example.com",
    "DATABASE_URL": "sqlite:////tmp/never-used.sqlite3",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "AWS_STORAGE_BUCKET_NAME": "practice-vault",
    "PORTAL_BASE_URL": "https://portal.example.com",
    "DEBUG": "0",
}


def test_production_refuses_to_start_without_keys(tmp_path) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "PORTAL_KEYS"}
    result = _manage(tmp_path, env, "check")
    assert result.returncode != 0
    assert "PORTAL_KEYS is not set" in result.stderr
    assert not (tmp_path / "data" / "keys").exists()


def test_production_refuses_to_start_without_secret_key(tmp_path) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = _manage(tmp_path, env, "check")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_rejects_a_malformed_key(tmp_path) -> None:
    result = _manage(tmp_path, {**PRODUCTION, "PORTAL_KEYS": "k1:c2hvcnQ="}, "check")
    assert result.returncode != 0
    assert "must be 32 bytes" in result.stderr


def test_check_deploy_is_clean_in_production(tmp_path) -> None:
    result = _manage(tmp_path, PRODUCTION, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_laptop_keys_survive_a_restart(tmp_path) -> None:
    env = {"PORTAL_MODE": "local"}
    assert _manage(tmp_path, env, "check").returncode == 0
    first = (tmp_path / "data" / "keys").read_text()
    assert _manage(tmp_path, env, "check").returncode == 0
    assert (tmp_path / "data" / "keys").read_text() == first
    assert oct((tmp_path / "data" / "keys").stat().st_mode & 0o777) == "0o600"


def test_check_deploy_wants_an_https_base_url(tmp_path) -> None:
    env = {**PRODUCTION, "PORTAL_BASE_URL": "http://portal.example.com"}
    result = _manage(tmp_path, env, "check", "--deploy")
    assert result.returncode != 0
    assert "portal.E001" in result.stderr


def _passkey_settings(tmp_path: Path, env: dict[str, str]) -> list[str]:
    code = (
        "from django.conf import settings as s;"
        "print(s.OTP_WEBAUTHN_RP_ID);print(','.join(s.OTP_WEBAUTHN_ALLOWED_ORIGINS))"
    )
    result = _manage(tmp_path, env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-2:]


def test_passkeys_belong_to_the_portal_host_name(tmp_path) -> None:
    assert _passkey_settings(tmp_path, PRODUCTION) == [
        "portal.example.com",
        "https://portal.example.com",
    ]
    # A laptop reached over the LAN (to try the handout's QR code on a phone) still starts;
    # passkeys stay at localhost, the one name browsers allow over plain http.
    lan = {"PORTAL_MODE": "local", "PORTAL_BASE_URL": "http://192.168.1.10:8000"}
    assert _manage(tmp_path, lan, "check").returncode == 0
    assert _passkey_settings(tmp_path, lan) == ["localhost", "http://localhost:8000"]


def test_check_deploy_refuses_mail_that_stays_on_the_server(tmp_path) -> None:
    env = {**PRODUCTION, "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend"}
    result = _manage(tmp_path, env, "check", "--deploy")
    assert result.returncode != 0
    assert "portal.E002" in result.stderr
