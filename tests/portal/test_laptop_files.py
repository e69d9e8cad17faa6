"""Laptop mode keeps everything it writes to its own user: files 0600, folders 0700."""

from __future__ import annotations

import stat
from pathlib import Path

from django.test import SimpleTestCase

from tests.portal.test_settings import _manage


class LaptopFilesTestCase(SimpleTestCase):
    def test_every_file_the_laptop_mode_creates_is_private(self) -> None:
        tmp = Path(self.enterContext(__import__("tempfile").TemporaryDirectory()))
        mail = {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend"}
        for args in (("migrate", "--no-input"), ("sendtestemail", "someone@example.org")):
            result = _manage(tmp, {"PORTAL_MODE": "local", **mail}, *args)
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        data = tmp / "data"
        found = {p.relative_to(data).as_posix() for p in data.rglob("*")}
        self.assertLessEqual({"portal.sqlite3", "keys", "secret_key", "mail"}, found)
        for path in [data, *data.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            with self.subTest(path=path.relative_to(tmp).as_posix(), mode=oct(mode)):
                self.assertEqual(mode, 0o700 if path.is_dir() else 0o600)

    def test_an_existing_data_folder_is_made_private(self) -> None:
        """A laptop set up before this rule had its database world-readable."""
        tmp = Path(self.enterContext(__import__("tempfile").TemporaryDirectory()))
        data = tmp / "data"
        data.mkdir(mode=0o755)
        (data / "portal.sqlite3").touch(mode=0o644)
        result = _manage(tmp, {"PORTAL_MODE": "local"}, "check")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertEqual(stat.S_IMODE(data.stat().st_mode), 0o700)
        self.assertEqual(stat.S_IMODE((data / "portal.sqlite3").stat().st_mode), 0o600)
