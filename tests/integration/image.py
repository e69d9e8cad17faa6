"""Read what the Dockerfile and compose file run, and run it here as the image would.

No container engine or registry is reachable in CI, so the tests take the commands from the
two files themselves and run them on this machine: in a read-only copy of what the image
copies, as an unprivileged user, with only the declared volumes and /tmp writable, against
the real PostgreSQL, Redis and an S3-speaking server.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


@dataclass
class Dockerfile:
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    copies: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)


def _instructions(text: str) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", text)
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        found.append((word.upper(), rest.strip()))
    return found


def parse_dockerfile(path: Path = ROOT / "Dockerfile") -> Dockerfile:
    """Return the image's environment, copies, build steps, volumes, command and health check."""
    image = Dockerfile()
    for word, rest in _instructions(path.read_text()):
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                image.env[key] = value
        elif word == "WORKDIR":
            image.workdir = rest
        elif word == "USER":
            image.user = rest
        elif word == "COPY":
            image.copies += shlex.split(rest)[:-1]
        elif word == "RUN":
            image.runs.append(rest)
        elif word == "VOLUME":
            image.volumes += json.loads(rest)
        elif word == "CMD":
            image.cmd = json.loads(rest)
        elif word == "HEALTHCHECK":
            image.healthcheck = json.loads(rest[rest.index("CMD") + 3 :].strip())
    return image


def load_compose(path: Path = ROOT / "compose.yaml") -> dict:
    return yaml.safe_load(path.read_text())


_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def substitute(value: str, variables: dict[str, str]) -> str:
    """Expand ${NAME}, ${NAME:-default} and ${NAME:?message} as compose does."""

    def expand(match: re.Match) -> str:
        name, kind, arg = match.groups()
        if variables.get(name):
            return variables[name]
        if kind == "-":
            return arg
        if kind == "?":
            raise KeyError(f"{name}: {arg}")
        return ""

    return _VARIABLE.sub(expand, value).replace("$$", "$")


def service(compose: dict, name: str, variables: dict[str, str]) -> tuple[list[str], dict]:
    """Return a service's command and environment with variables expanded."""
    spec = compose["services"][name]
    command = [substitute(str(part), variables) for part in spec["command"]]
    env = {k: substitute(str(v), variables) for k, v in (spec.get("environment") or {}).items()}
    return command, env


def build_copy(dockerfile: Dockerfile, target: Path) -> Path:
    """Copy what the image copies into target/app; return that folder."""
    app = target / "app"
    app.mkdir(parents=True)
    for name in dockerfile.copies:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, app / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy2(source, app / name)
    return app


def make_read_only(folder: Path) -> None:
    """Give folder the image's modes: readable by all, writable by none (files belong to root)."""
    for path in [folder, *folder.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        path.chmod(0o555 if stat.S_ISDIR(mode) or mode & 0o100 else 0o444)


def image_umask() -> None:
    """A build step's umask (the test process may run with laptop mode's 077)."""
    os.umask(0o022)


def writable_for_nobody(folder: Path, mode: int = 0o700) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    os.chown(folder, NOBODY, NOBODY)
    folder.chmod(mode)
    return folder


def image_python() -> Path:
    """Return the bin folder of a virtualenv made as the image makes its own.

    The system's Python (readable by any user, as the image's is), with the dependencies
    installed from requirements.lock with --require-hashes: what the image runs, and a check
    that the lock installs. Kept between runs, keyed by the lock file's content.
    """
    import fcntl
    import hashlib
    import subprocess

    lock = ROOT / "requirements.lock"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"portal-image-venv-{digest}"
    with open(f"{folder}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not (folder / "installed").exists():
            shutil.rmtree(folder, ignore_errors=True)
            base = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
            subprocess.run(  # noqa: S603
                [base, "-m", "venv", str(folder)], check=True, preexec_fn=image_umask
            )
            subprocess.run(  # noqa: S603
                [str(folder / "bin" / "pip"), "install", "--quiet", "--require-hashes",
                 "--no-deps", "-r", str(lock)],
                check=True, preexec_fn=image_umask,
            )  # fmt: skip
            (folder / "installed").write_text(digest)
    return folder / "bin"


def as_nobody(command: list[str]) -> list[str]:
    """Run a command as an unprivileged user with no supplementary groups."""
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]


def snapshot(folder: Path) -> dict[str, float]:
    """Return every file below folder with its modification time."""
    return {str(p.relative_to(folder)): p.lstat().st_mtime for p in folder.rglob("*")}
