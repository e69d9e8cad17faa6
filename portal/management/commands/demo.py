"""Fill the laptop database with demo data, print how to sign in, and serve the portal."""

from __future__ import annotations

import errno
import json
import os
import shlex
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from portal.demo.data import build_demo

# The demo scan's jaw, teeth and landmarks need this many slices of 0.3 mm.
MIN_CBCT_SLICES = 120


class Command(BaseCommand):
    help = "Migrate, create demo data (idempotent), print a staff login and a share link, serve."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-serve", action="store_true", help="Do everything but serving.")
        parser.add_argument(
            "--addrport",
            default="127.0.0.1:8000",
            help="Address and port to serve on (default 127.0.0.1:8000), e.g. 127.0.0.1:8001.",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument("--cbct-slices", type=int, default=300)

    def handle(self, *args, **options) -> None:
        if not settings.LOCAL:
            raise CommandError("The demo runs only in laptop mode (PORTAL_MODE=local).")
        if options["cbct_slices"] < MIN_CBCT_SLICES:
            raise CommandError(f"--cbct-slices must be at least {MIN_CBCT_SLICES}.")
        if not options["no_serve"]:
            # Before anything changes: a second run beside a running demo would otherwise
            # replace the login and link the first one printed, and then fail anyway.
            _refuse_if_taken(options["addrport"])
        call_command("migrate", interactive=False, verbosity=0)
        result = build_demo(cbct_slices=options["cbct_slices"])
        base = f"http://{options['addrport']}"
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "staff_password": result.password,
                        "staff": [s.__dict__ for s in result.staff],
                        "share_path": result.share_path,
                        "share_password": result.share_password,
                        "share_birth_date": result.share_birth_date,
                        "study_code": str(result.cbct_study.code),
                    }
                )
            )
        else:
            self._print(result, base)
        # Sent to a file or a pipe, output waits in a buffer: the login and link must be
        # readable while the server runs, not only after it stops.
        self.stdout.flush()
        if not options["no_serve"]:
            serve_at(base)
            call_command("runserver", options["addrport"], use_reloader=False)

    def _print(self, result, base: str) -> None:
        out = self.stdout.write
        stored = sum(1 for line in result.ingest_lines if line.startswith("stored"))
        if result.ingest_lines:
            out(f"Ingested {stored} of {len(result.ingest_lines)} demo files.")
        for line in result.ingest_lines:
            if not line.startswith("stored"):
                out(f"  {line}")
        out("")
        out(f"Demo practice: {result.practice.name}")
        out(f"Staff sign-in: {base}/login/")
        out(f"  password for every demo user: {result.password}")
        for s in result.staff:
            out(f"  {s.username:16} {s.role:15} authenticator: {s.otpauth_uri}")
        python = _env_shown() + _python_shown()
        totp = f"{python} manage.py totp_code demo-frontdesk"
        out(f"  (no authenticator app? `{totp}` prints the code)")
        out("")
        out(f"Share link (patient): {base}{result.share_path}")
        out(f"  password: {result.share_password}")
        out(f"  date of birth: {result.share_birth_date}")
        if result.dicom_node and result.dicom_device:
            node, device = result.dicom_node, result.dicom_device
            out("")
            receiver = f"{python} manage.py dicom_receiver"
            out(f"DICOM receiver: `{receiver}` (port {settings.PORTAL_DICOM_PORT})")
            sender = f"{device.ae_title} at {device.address}"
            out(f"  called AE title {node.ae_title}: {sender} may send")
        out("")


def serve_at(base: str) -> None:
    """Make the links the portal writes (share and upload links, emails) point at base.

    The laptop default is port 8000; a demo served elsewhere must not hand out links to it.
    An address given in PORTAL_BASE_URL stays as given.
    """
    if os.environ.get("PORTAL_BASE_URL"):
        return
    settings.PORTAL_BASE_URL = base
    port = urlsplit(base).port or 8000
    if not os.environ.get("PORTAL_PASSKEY_ORIGINS"):
        settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [f"http://localhost:{port}"]


def _refuse_if_taken(addrport: str) -> None:
    host, _, port = addrport.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise CommandError(
            f"--addrport {addrport}: give an address and port, e.g. 127.0.0.1:8001"
        ) from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind((host, number))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise CommandError(f"Cannot serve on {addrport}: {exc.strerror}") from None
            raise CommandError(
                f"{addrport} is in use. If a demo runs there, it still works with the login "
                "and link it printed; stop it (Ctrl+C in its window) before starting a new "
                "one, which would replace them (both keep their data in the same folder). "
                "If another program uses the port, serve the demo on a free one: "
                "manage.py demo --addrport 127.0.0.1:8001"
            ) from None


def _env_shown() -> str:
    """The data folder this demo used, for the commands it prints (none: the default)."""
    folder = os.environ.get("PORTAL_DATA_DIR")
    return f"PORTAL_DATA_DIR={shlex.quote(folder)} " if folder else ""


def _python_shown() -> str:
    """The Python that runs this, as the reader would type it (.venv/bin/python in a checkout)."""
    python = Path(sys.executable)
    try:
        return str(python.relative_to(Path.cwd()))
    except ValueError:
        return str(python)
