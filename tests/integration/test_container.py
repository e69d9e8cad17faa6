"""The image's and compose file's commands start and serve as the containers would run them.

Read-only application files, an unprivileged user, only the declared volumes and /tmp
writable; PostgreSQL, Redis and an S3-speaking server (moto) as the stack's db, redis and s3.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from django.test import SimpleTestCase

from tests.integration import image
from tests.integration.services import REDIS_URL, require

VENV_BIN = ""
PG_URL = os.environ.get("PORTAL_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ContainerCommandsTestCase(SimpleTestCase):
    """One stack for the whole class: build copy, database, bucket, then each service."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        require(PG_URL, "PostgreSQL")
        require(REDIS_URL, "Redis")
        if not shutil.which("setpriv"):
            pytest.skip("setpriv (util-linux) is needed to run as an unprivileged user")
        import psycopg

        from tests.portal.s3server import s3_endpoint

        global VENV_BIN
        VENV_BIN = str(image.image_python())
        cls.tmp = Path(tempfile.mkdtemp(prefix="portal-image-"))
        cls.tmp.chmod(0o755)
        cls.dockerfile = image.parse_dockerfile()
        cls.compose = image.load_compose()
        cls.app = image.build_copy(cls.dockerfile, cls.tmp)
        cls.var = image.writable_for_nobody(cls.tmp / "var")
        for volume in ("vault", "beat", "spool"):
            image.writable_for_nobody(cls.var / volume)
        cls.scratch = image.writable_for_nobody(cls.tmp / "tmp", 0o1777)
        cls.secrets = cls.tmp / "secrets"
        cls.secrets.mkdir(mode=0o755)
        cls.secrets.chmod(0o755)
        for name, value in {
            "secret_key": secrets.token_urlsafe(50),
            "portal_keys": "k1:" + __import__("base64").b64encode(os.urandom(32)).decode(),
            "audit_key": __import__("base64").b64encode(os.urandom(32)).decode(),
            "audit_signing_key": __import__("base64").b64encode(os.urandom(32)).decode(),
            "db_password": "unused-with-trust-auth",
            "s3_secret_key": "test",
        }.items():
            (cls.secrets / name).write_text(value + "\n")
            os.chown(cls.secrets / name, image.NOBODY, image.NOBODY)
            (cls.secrets / name).chmod(0o400)
        cls.database = f"portal_image_{secrets.token_hex(4)}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{cls.database}"')
        cls.s3 = s3_endpoint()
        cls.bucket = f"portal-image-{secrets.token_hex(4)}"
        cls.procs: list[subprocess.Popen] = []
        cls._collect_static()
        image.make_read_only(cls.app)
        cls.before = image.snapshot(cls.app)

    @classmethod
    def tearDownClass(cls) -> None:
        import psycopg

        for proc in cls.procs:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{cls.database}" WITH (FORCE)')
        for path in [cls.tmp, *cls.tmp.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o700)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    # -- the container's view of this machine ---------------------------------------------
    @classmethod
    def _map(cls, value: str) -> str:
        """Translate container paths and service host names to this machine's."""
        redis = REDIS_URL.rsplit("/", 1)[0]
        db = PG_URL.rsplit("/", 1)[0]
        # The container's /tmp first: the paths put in below may themselves be under /tmp.
        value = re.sub(r"(?<![\w/.])/tmp\b", str(cls.scratch), value)
        for old, new in (
            ("/var/lib/portal", str(cls.var)),
            ("/run/secrets", str(cls.secrets)),
            ("postgres://portal@db:5432/portal", f"{db}/{cls.database}"),
            ("redis://redis:6379", redis),
            ("http://s3:9000", cls.s3),
        ):
            value = value.replace(old, new)
        return value

    @classmethod
    def _env(cls, service_env: dict[str, str]) -> dict[str, str]:
        env = {k: cls._map(v) for k, v in {**cls.dockerfile.env, **service_env}.items()}
        env["AWS_STORAGE_BUCKET_NAME"] = cls.bucket
        env.update(
            PATH=f"{VENV_BIN}:/usr/bin:/bin",
            HOME=str(cls.var),
            TMPDIR=str(cls.scratch),
            LANG="C.UTF-8",
        )
        return env

    @classmethod
    def _service(cls, name: str) -> tuple[list[str], dict[str, str]]:
        variables = {"EMAIL_HOST": "127.0.0.1", "PORTAL_HOST": "localhost"}
        command, env = image.service(cls.compose, name, variables)
        return [cls._map(part) for part in command], cls._env(env)

    @classmethod
    def _start(cls, command: list[str], env: dict[str, str], log: str) -> subprocess.Popen:
        out = (cls.tmp / log).open("wb")
        proc = subprocess.Popen(  # noqa: S603 - the compose file's own command
            image.as_nobody(command), cwd=cls.app, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        cls.procs.append(proc)
        return proc

    @classmethod
    def _collect_static(cls) -> None:
        """Run the image's collectstatic step in the copy, as the build does (as root)."""
        step = next(run for run in cls.dockerfile.runs if "collectstatic" in run)
        first = step.split("&&")[0]
        env = {k: cls._map(v) for k, v in cls.dockerfile.env.items()}
        env.update(PATH=f"{VENV_BIN}:/usr/bin:/bin", HOME=str(cls.tmp))
        result = subprocess.run(  # noqa: S603
            ["sh", "-c", first], cwd=cls.app, env=env, capture_output=True, text=True,
            timeout=300, preexec_fn=image.image_umask,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr

    def _log(self, name: str) -> str:
        return (self.tmp / name).read_text(errors="replace")

    # -- the services -------------------------------------------------------------------
    def test_the_stack(self) -> None:
        """Run migrate, web, worker and beat in the order compose starts them."""
        with self.subTest("migrate"):
            self._check_migrate()
        with self.subTest("web"):
            self._check_web()
        with self.subTest("worker"):
            self._check_worker()
        with self.subTest("beat"):
            self._check_beat()
        with self.subTest("dicom-receiver"):
            self._check_dicom_receiver()
        with self.subTest("read-only"):
            self.assertEqual(image.snapshot(self.app), self.before)
            self.assertEqual(image.parse_dockerfile().user, "portal")

    def _check_migrate(self) -> None:
        command, env = self._service("migrate")
        result = subprocess.run(  # noqa: S603
            image.as_nobody(command), cwd=self.app, env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(f"bucket created: {self.bucket}", result.stdout)

    def _check_web(self) -> None:
        command, env = self._service("web")
        self.assertEqual(command, self.dockerfile.cmd)  # compose runs the image's command
        port = _free_port()
        env["PORTAL_BIND"] = f"127.0.0.1:{port}"
        proc = self._start(command, env, "web.log")
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)  # noqa: S310
                break
            except OSError:
                self.assertIsNone(proc.poll(), self._log("web.log"))
                self.assertLess(time.monotonic(), deadline, self._log("web.log"))
                time.sleep(0.2)
        probe = [
            part.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            for part in self.dockerfile.healthcheck
        ]
        result = subprocess.run(  # noqa: S603
            image.as_nobody(probe), cwd=self.app, env=env, capture_output=True, timeout=30
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        ready = urllib.request.urlopen(base + "/readyz", timeout=10).read().decode()  # noqa: S310
        self.assertEqual(ready.count('"ok"'), 6, ready)
        request = urllib.request.Request(  # noqa: S310
            base + "/login/", headers={"Host": "localhost", "X-Forwarded-Proto": "https"}
        )
        page = urllib.request.urlopen(request, timeout=10).read().decode()  # noqa: S310
        css = re.search(r'href="(/static/portal/portal\.[0-9a-f]{12}\.css)"', page)
        self.assertIsNotNone(css, "production pages link content-hashed static files")
        static = urllib.request.Request(base + css[1], headers=request.headers)  # noqa: S310
        with urllib.request.urlopen(static, timeout=10) as response:  # noqa: S310
            self.assertIn("immutable", response.headers["Cache-Control"])
            self.assertIn("max-age=315360000", response.headers["Cache-Control"])
        line = re.compile(r'"GET /login/ HTTP/1\.1" 200 \d+ \d+ms')
        for _ in range(50):  # the access log is written once the answer is sent
            if line.search(self._log("web.log")):
                break
            time.sleep(0.1)
        self.assertRegex(self._log("web.log"), line)
        self.assertFalse((self.var / ".gunicorn").exists())

    def _check_worker(self) -> None:
        command, env = self._service("worker")
        hostname = socket.gethostname()
        proc = self._start(command, env, "worker.log")
        probe = self.compose["services"]["worker"]["healthcheck"]["test"][1]
        probe = probe.replace("$$HOSTNAME", hostname)
        deadline = time.monotonic() + 90
        while True:
            result = subprocess.run(  # noqa: S603
                image.as_nobody(["sh", "-c", probe]), cwd=self.app, env=env,
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            if result.returncode == 0:
                break
            self.assertIsNone(proc.poll(), self._log("worker.log"))
            self.assertLess(time.monotonic(), deadline, result.stdout + self._log("worker.log"))
            time.sleep(1)

    def _check_dicom_receiver(self) -> None:
        """The receiver listens and speaks DICOM: an unknown AE title is refused by name."""
        import shutil

        command, env = self._service("dicom-receiver")
        port = _free_port()
        env.update(PORTAL_DICOM_HOST="127.0.0.1", PORTAL_DICOM_PORT=str(port))
        proc = self._start(command, env, "dicom.log")
        probe = self.compose["services"]["dicom-receiver"]["healthcheck"]["test"][1:]
        probe = [part.replace("11112", str(port)) for part in probe]
        deadline = time.monotonic() + 60
        while subprocess.run(image.as_nobody(probe), env=env, capture_output=True).returncode:  # noqa: S603
            self.assertIsNone(proc.poll(), self._log("dicom.log"))
            self.assertLess(time.monotonic(), deadline, self._log("dicom.log"))
            time.sleep(0.3)
        echoscu = shutil.which("echoscu") or "echoscu"
        echo = subprocess.run(  # noqa: S603
            [echoscu, "-aec", "NOSUCHPRACTICE", "127.0.0.1", str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        self.assertIn("Called AE Title Not Recognized", echo.stdout + echo.stderr)

    def _check_beat(self) -> None:
        command, env = self._service("beat")
        proc = self._start(command, env, "beat.log")
        deadline = time.monotonic() + 60
        while not list((self.var / "beat").glob("schedule*")):
            self.assertIsNone(proc.poll(), self._log("beat.log"))
            self.assertLess(time.monotonic(), deadline, self._log("beat.log"))
            time.sleep(0.5)
        time.sleep(1)
        self.assertIsNone(proc.poll(), self._log("beat.log"))
