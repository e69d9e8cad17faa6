"""Production static files: every script a page loads has a content-hashed name."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.test import SimpleTestCase, TestCase, override_settings

PRODUCTION_STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "portal.staticfiles.StaticStorage"},
}


class HashedModuleImportsTestCase(SimpleTestCase):
    def test_the_viewer_modules_import_each_other_by_their_hashed_names(self) -> None:
        """An unhashed import would be served with a short cache time and go stale on upgrade."""
        with tempfile.TemporaryDirectory() as root:
            with override_settings(STATIC_ROOT=root, STORAGES=PRODUCTION_STORAGES):
                call_command("collectstatic", interactive=False, verbosity=0)
            entry = next(Path(root, "viewer").glob("viewer.*.js"))
            imports = re.findall(r'from "(\./[^"]+)"', entry.read_text())
            self.assertGreater(len(imports), 3)
            for name in imports:
                with self.subTest(name):
                    self.assertRegex(name, r"^\./[a-z-]+\.[0-9a-f]{12}\.js$")
                    self.assertTrue((entry.parent / name).is_file())


class FaviconTestCase(TestCase):
    def test_every_page_names_an_icon_it_serves(self) -> None:
        """Browsers otherwise ask for /favicon.ico and log a 404 on every visit."""
        page = self.client.get("/login/")
        found = re.search(r'<link rel="icon" href="([^"]+)"', page.content.decode())
        self.assertIsNotNone(found, "no icon named")
        icon = self.client.get(found.group(1))
        self.assertEqual(icon.status_code, 200)
        body = b"".join(icon.streaming_content) if icon.streaming else icon.content
        self.assertIn(b"<svg", body)
