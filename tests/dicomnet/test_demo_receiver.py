"""The demo practice's receiver answers the README's echoscu line as printed."""

from __future__ import annotations

import io
import subprocess

from django.core.management import call_command
from django.test import TransactionTestCase

from tests.dicomnet.helpers import receiving, require_tool


class DemoReceiverTestCase(TransactionTestCase):
    def test_the_demo_device_echoes_and_a_stranger_is_refused(self) -> None:
        echoscu = require_tool("echoscu")
        out = io.StringIO()
        call_command("demo", "--no-serve", "--cbct-slices", "120", stdout=out)
        self.assertIn("called AE title SMILEPACS: CBCT1 at 127.0.0.1 may send", out.getvalue())
        with receiving() as port:
            ok = subprocess.run(  # noqa: S603 - dcmtk's echoscu, as the README has it
                [echoscu, "-aet", "CBCT1", "-aec", "SMILEPACS", "127.0.0.1", str(port)],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            stranger = subprocess.run(  # noqa: S603
                [echoscu, "-aet", "STRANGER", "-aec", "SMILEPACS", "127.0.0.1", str(port)],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertNotEqual(stranger.returncode, 0)
