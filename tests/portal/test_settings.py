"""Production refuses to start without its secrets; with them, check --deploy is clean."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY = "k1:" + base64.b64encode(b"\x01" * 32).decode()


def _manage(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAL_", "DATABASE_URL", "SECRET_KEY", "DJANGO_", "EMAIL_"))
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
    "PORTAL_AUDIT_KEY": base64.b64encode(b"\x02" * 32).decode(),
    "PORTAL_AUDIT_SIGNING_KEY": base64.b64encode(b"\x03" * 32).decode(),
    "ALLOWED_HOSTS": "portal.example.com",
    "DATABASE_URL": "postgres://portal:secret@127.0.0.1:1/portal",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "AWS_STORAGE_BUCKET_NAME": "practice-vault",
    "PORTAL_BASE_URL": "https://portal.example.com",
    "EMAIL_HOST": "smtp.example.com",
    "DEBUG": "0",
}

# Each way production can be missing or unsafe: (what changes, the check id, words of its line).
MISCONFIGURED = [
    ({"SECRET_KEY": None}, "portal.E016", "SECRET_KEY is not set"),
    ({"PORTAL_KEYS": None}, "portal.E017", "PORTAL_KEYS is not set"),
    ({"PORTAL_KEYS": "k1:c2hvcnQ="}, "portal.E017", "must be 32 bytes"),
    ({"PORTAL_AUDIT_KEY": None}, "portal.E019", "PORTAL_AUDIT_KEY is not set"),
    ({"PORTAL_AUDIT_KEY": "c2hvcnQ="}, "portal.E019", "must be 32 bytes"),
    ({"PORTAL_AUDIT_SIGNING_KEY": None}, "portal.E020", "PORTAL_AUDIT_SIGNING_KEY is not set"),
    ({"DATABASE_URL": None}, "portal.E010", "DATABASE_URL must name the PostgreSQL"),
    ({"DATABASE_URL": "sqlite:////tmp/x.sqlite3"}, "portal.E010", "SQLite is for a laptop"),
    ({"CELERY_BROKER_URL": None}, "portal.E011", "CELERY_BROKER_URL must name Redis"),
    ({"CELERY_BROKER_URL": "memory://"}, "portal.E011", "CELERY_BROKER_URL must name Redis"),
    ({"ALLOWED_HOSTS": None}, "portal.E012", "ALLOWED_HOSTS must name"),
    ({"ALLOWED_HOSTS": "*"}, "portal.E012", "ALLOWED_HOSTS must name"),
    ({"PORTAL_BASE_URL": None}, "portal.E001", "PORTAL_BASE_URL must be"),
    ({"PORTAL_BASE_URL": "http://portal.example.com"}, "portal.E001", "https://"),
    ({"AWS_STORAGE_BUCKET_NAME": None}, "portal.E013", "PORTAL_VAULT_DIR"),
    ({"EMAIL_HOST": None}, "portal.E014", "EMAIL_HOST must name"),
    (
        {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend"},
        "portal.E002",
        "EMAIL_BACKEND keeps messages",
    ),
    (
        {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"},
        "portal.E002",
        "EMAIL_BACKEND keeps messages",
    ),
    ({"DEBUG": "1"}, "portal.E015", "DEBUG must be 0"),
    (
        {"PORTAL_DICOM_DESTINATION_NETWORKS": "10.0.0.0/8,the-lab"},
        "portal.E021",
        "'the-lab' is not a network",
    ),
    (
        {"SECRET_KEY": None, "SECRET_KEY_FILE": "/nonexistent/secret_key"},
        "portal.E018",
        "SECRET_KEY_FILE=/nonexistent/secret_key cannot be read",
    ),
]


def _env(change: dict[str, str | None]) -> dict[str, str]:
    env = {**PRODUCTION, **change}
    return {k: v for k, v in env.items() if v is not None}


def _python(tmp_path: Path, env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAL_", "DATABASE_URL", "SECRET_KEY", "DJANGO_", "EMAIL_"))
    }
    base.update({"PORTAL_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        cwd=ROOT, env=base, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(("change", "check_id", "words"), MISCONFIGURED)
def test_production_refuses_to_start_with_one_line(tmp_path, change, check_id, words) -> None:
    """gunicorn's entry point stops with one line naming the setting, and no traceback."""
    result = _python(tmp_path, _env(change), "import portal.wsgi")
    assert result.returncode == 78, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("portal: cannot start in production: ")
    assert words in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "keys").exists()


@pytest.mark.parametrize(("change", "check_id", "words"), MISCONFIGURED)
def test_check_deploy_reports_each_as_an_error(tmp_path, change, check_id, words) -> None:
    result = _manage(tmp_path, _env(change), "check", "--deploy")
    assert result.returncode != 0
    assert check_id in result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_manage_commands_refuse_too(tmp_path) -> None:
    result = _manage(tmp_path, _env({"DATABASE_URL": None}), "migrate")
    assert result.returncode == 78
    assert "DATABASE_URL must name the PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_worker_refuses_too(tmp_path) -> None:
    env = _env({"CELERY_BROKER_URL": "memory://"})
    code = "from portal.celery import app; app.worker_main(['worker', '--pool', 'solo'])"
    result = _python(tmp_path, env, code)
    assert result.returncode == 78, result.stderr[-2000:]
    assert "CELERY_BROKER_URL must name Redis" in result.stderr


def test_several_problems_give_a_line_each(tmp_path) -> None:
    result = _python(tmp_path, _env({"SECRET_KEY": None, "EMAIL_HOST": None}), "import portal.wsgi")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, result.stderr


def test_check_deploy_is_clean_in_production(tmp_path) -> None:
    result = _manage(tmp_path, PRODUCTION, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_a_local_vault_folder_is_a_storage(tmp_path) -> None:
    env = _env({"AWS_STORAGE_BUCKET_NAME": None, "PORTAL_VAULT_DIR": str(tmp_path / "vault")})
    result = _manage(tmp_path, env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr


def test_laptop_keys_survive_a_restart(tmp_path) -> None:
    env = {"PORTAL_MODE": "local"}
    assert _manage(tmp_path, env, "check").returncode == 0
    first = (tmp_path / "data" / "keys").read_text()
    assert _manage(tmp_path, env, "check").returncode == 0
    assert (tmp_path / "data" / "keys").read_text() == first
    assert oct((tmp_path / "data" / "keys").stat().st_mode & 0o777) == "0o600"


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


def test_workers_fork_with_the_preloaded_app_hidden_from_the_collector(tmp_path) -> None:
    """The first collections in a new worker must not walk Django, numpy and every view.

    Left in the collector's generations they cost a recipient's first request a few hundred
    milliseconds; gunicorn's pre_fork hook freezes them in the master, after the preload.
    """
    code = (
        "import gc, portal.wsgi, portal.gunicorn_conf as conf\n"
        "before = gc.get_freeze_count()\n"
        "conf.pre_fork(None, None)\n"
        "print(before, gc.get_freeze_count())\n"
    )
    result = _python(tmp_path, {"PORTAL_MODE": "local"}, code)
    assert result.returncode == 0, result.stderr
    before, frozen = map(int, result.stdout.split())
    assert before == 0
    assert frozen > 60_000  # the loaded app (a bare interpreter holds about 8,000)


# A database that cannot be reached: a folder that does not exist, a server nobody listens on.
UNREACHABLE = [
    ({"PORTAL_MODE": "local", "DATABASE_URL": "sqlite:////nonexistent-folder/portal.sqlite3"},),
    ({**PRODUCTION, "DATABASE_URL": "postgres://portal:s3cret-word@127.0.0.1:1/portal"},),
]


@pytest.mark.parametrize("env", [u[0] for u in UNREACHABLE], ids=["sqlite", "postgresql"])
@pytest.mark.parametrize("command", ["migrate", "dicom_receiver", "verify_audit"])
def test_an_unreachable_database_is_one_line_for_the_operator(tmp_path, env, command) -> None:
    result = _manage(tmp_path, env, command)
    assert result.returncode == 69, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("The database could not be reached"), lines[0]
    assert "Traceback" not in result.stderr
    assert "s3cret-word" not in result.stderr + result.stdout


def test_a_database_not_migrated_says_so_in_one_line(tmp_path) -> None:
    env = {"PORTAL_MODE": "local", "DATABASE_URL": f"sqlite:///{tmp_path}/empty.sqlite3"}
    result = _manage(tmp_path, env, "verify_audit")
    assert result.returncode == 69, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"The database is not set up (SQLite file {tmp_path}/empty.sqlite3)")
    assert lines[0].endswith("migrations are not applied; run `manage.py migrate` first")


def test_an_empty_laptop_data_folder_says_how_to_name_the_demos(tmp_path) -> None:
    """The demo's data in another folder: a command run without PORTAL_DATA_DIR meets an
    empty one, and must say how to point at the right one, not only to migrate."""
    env = {"PORTAL_MODE": "local", "PORTAL_DATA_DIR": str(tmp_path / "data")}
    result = _manage(tmp_path, env, "verify_audit")
    assert result.returncode == 69, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert "run `manage.py migrate` first" in lines[0]
    assert f"another folder than {tmp_path / 'data'}, set PORTAL_DATA_DIR" in lines[0]


def test_a_bad_query_keeps_its_traceback(tmp_path) -> None:
    """Only the environment's faults are cut to a line; a bug still shows where it is."""
    env = {"PORTAL_MODE": "local", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    assert _manage(tmp_path, env, "migrate").returncode == 0
    result = _manage(tmp_path, env, "shell", "-c", "from django.db import connection; "
                     "connection.cursor().execute('select * from no_such_table')")  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "no_such_table" in result.stderr


def test_a_migration_that_fails_keeps_its_own_error(tmp_path) -> None:
    """A failing migrate is not told to run migrate: the operator sees what failed."""
    import sqlite3

    database = tmp_path / "db.sqlite3"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE portal_practice (id integer)")  # in the way of the first one
    env = {"PORTAL_MODE": "local", "DATABASE_URL": f"sqlite:///{database}"}
    result = _manage(tmp_path, env, "migrate")
    assert result.returncode == 1
    assert "run `manage.py migrate` first" not in result.stderr
    assert "portal_practice" in result.stderr and "already exists" in result.stderr
