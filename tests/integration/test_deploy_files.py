"""The deployment files agree with each other: lock file, Dockerfile, .dockerignore, compose."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import tomllib

import pytest
from django.test import SimpleTestCase

from tests.integration import image

ROOT = image.ROOT


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for line in requirements:
        match = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^;\s]+)", line)
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


class LockFileTestCase(SimpleTestCase):
    def test_every_dependency_of_the_image_is_locked_at_its_pinned_version(self) -> None:
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        wanted = _pins(project["dependencies"] + project["optional-dependencies"]["prod"])
        locked = _pins((ROOT / "requirements.lock").read_text().splitlines())
        for name, version in wanted.items():
            with self.subTest(name):
                self.assertEqual(locked.get(name), version)

    def test_every_locked_package_has_hashes(self) -> None:
        text = (ROOT / "requirements.lock").read_text()
        entries = [e for e in re.split(r"\n(?=[A-Za-z0-9])", text) if "==" in e.split("\n")[0]]
        self.assertGreater(len(entries), 20)
        for entry in entries:
            with self.subTest(entry.split()[0]):
                self.assertIn("--hash=sha256:", entry)

    def test_the_image_installs_dependencies_before_copying_code(self) -> None:
        steps = [line.split()[0:2] for line in (ROOT / "Dockerfile").read_text().splitlines()]
        first_code = steps.index(["COPY", "portal"])
        install = next(
            n for n, line in enumerate((ROOT / "Dockerfile").read_text().splitlines())
            if "--require-hashes" in line
        )  # fmt: skip
        self.assertLess(install, first_code)


class DockerignoreTestCase(SimpleTestCase):
    def _included(self, path: str) -> bool:
        """Apply .dockerignore's rules in order, as the builder does (last match wins)."""
        included = True
        for rule in (ROOT / ".dockerignore").read_text().splitlines():
            rule = rule.strip()
            if not rule or rule.startswith("#"):
                continue
            negate = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern + "/*"):
                included = negate
        return included

    def test_secrets_data_and_virtualenvs_never_reach_the_builder(self) -> None:
        for path in ("data/keys", "data/secret_key", "data/portal.sqlite3", "secrets/db_password",
                     ".venv/bin/python", ".git/config", "tests/base.py"):  # fmt: skip
            with self.subTest(path):
                self.assertFalse(self._included(path))

    def test_what_the_image_copies_is_sent(self) -> None:
        for name in image.parse_dockerfile().copies:
            with self.subTest(name):
                self.assertTrue(self._included(f"{name}/x.py" if "." not in name else name))


class ComposeTestCase(SimpleTestCase):
    def test_the_web_service_runs_the_images_command(self) -> None:
        compose = image.load_compose()
        self.assertEqual(compose["services"]["web"]["command"], image.parse_dockerfile().cmd)

    def test_every_service_has_a_health_check_or_runs_once(self) -> None:
        for name, spec in image.load_compose()["services"].items():
            with self.subTest(name):
                self.assertTrue(
                    "healthcheck" in spec
                    or spec.get("restart") == "no"
                    or name in ("beat", "proxy")
                )

    def test_the_portals_containers_are_read_only_and_unprivileged(self) -> None:
        compose = image.load_compose()
        for name in ("migrate", "web", "worker", "beat"):
            with self.subTest(name):
                spec = compose["services"][name]
                self.assertTrue(spec["read_only"])
                self.assertEqual(spec["user"], "10001:10001")

    def test_a_compose_tool_accepts_the_file(self) -> None:
        tool = shutil.which("docker-compose")
        if tool is None:
            message = "no compose tool here (apt-get install docker-compose)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        folder = ROOT / "secrets"
        made = not folder.exists()
        if made:
            folder.mkdir()
            for name in image.load_compose()["secrets"]:
                (folder / name).write_text("placeholder\n")
        try:
            env = {**os.environ, "EMAIL_HOST": "smtp.example.com"}
            result = subprocess.run(  # noqa: S603
                [tool, "-f", str(ROOT / "compose.yaml"), "config", "-q"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            self.assertEqual(result.returncode, 0, result.stderr)
            env.pop("EMAIL_HOST")
            result = subprocess.run(  # noqa: S603
                [tool, "-f", str(ROOT / "compose.yaml"), "config", "-q"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("EMAIL_HOST", result.stderr)
        finally:
            if made:
                shutil.rmtree(folder)


class RepositoryTestCase(SimpleTestCase):
    """What CI runs first must at least parse: a merge left half-done once broke every run."""

    def test_no_tracked_file_holds_merge_conflict_markers(self) -> None:
        tracked = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.split(b"\0")
        marker = re.compile(rb"^(<{7} |>{7} |={7}$)", re.M)
        for name in filter(None, tracked):
            path = ROOT / name.decode()
            if path.suffix in {".dcm", ".png", ".jpg", ".zip", ".gz"} or not path.is_file():
                continue
            with self.subTest(name.decode()):
                self.assertIsNone(marker.search(path.read_bytes()))

    def test_the_ci_script_and_shell_helpers_parse(self) -> None:
        tracked = subprocess.run(
            ["git", "ls-files", ".ci", "*.sh"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        self.assertIn(".ci/run", tracked)
        for name in tracked:
            with self.subTest(name):
                result = subprocess.run(
                    ["bash", "-n", name], cwd=ROOT, capture_output=True, text=True
                )
                self.assertEqual(result.returncode, 0, result.stderr)
