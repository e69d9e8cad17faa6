"""Orthanc, the reference DICOM server, run beside the portal for comparisons and tests.

Debian's `orthanc` package ships a service that listens on every interface; it is never
started. The binary is run here with a throwaway configuration and storage directory.
Orthanc 1.10 has no setting for the address it binds, so the configuration refuses HTTP
from anywhere but this machine (RemoteAccessAllowed false) and DICOM from any peer but the
ones named, at 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


def binary() -> str | None:
    """Return the Orthanc executable on PATH (or Debian's /usr/sbin), or None."""
    return shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin:/usr/local/sbin")


DICOMWEB_PLUGINS = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so",
)


def dicomweb_plugin() -> str | None:
    """Return the DICOMweb plugin of Debian's orthanc-dicomweb package, or None."""
    return next((p for p in DICOMWEB_PLUGINS if Path(p).exists()), None)


def dicomweb_client(name: str, url: str, headers: dict[str, str]) -> dict:
    """Return the `extra` configuration that makes Orthanc a DICOMweb client of one server."""
    return {
        "DicomWeb": {
            "Enable": True,
            "Servers": {name: {"Url": url.rstrip("/") + "/", "HttpHeaders": headers}},
        }
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Orthanc:
    """A running Orthanc: its REST base URL, DICOM port and AE title."""

    url: str
    dicom_port: int
    aet: str
    process: subprocess.Popen
    folder: Path
    log_path: Path
    plugins: list[str] = field(default_factory=list)

    def request(
        self, path: str, data: bytes | None = None, method: str | None = None, **headers: str
    ) -> bytes:
        """Return the body of a REST call; raise RuntimeError with Orthanc's answer on failure."""
        req = urllib.request.Request(  # noqa: S310 - a loopback URL this module made
            self.url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as response:  # noqa: S310
                return response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"Orthanc {path}: {exc.code} {exc.read()[:200]!r}") from None

    def json(self, path: str, data: bytes | None = None, method: str | None = None):
        return json.loads(self.request(path, data, method) or b"null")

    def upload(self, files: Iterable[Path]) -> list[str]:
        """Store DICOM files through the REST API; return their Orthanc instance ids."""
        ids = []
        for path in files:
            answer = json.loads(self.request("/instances", Path(path).read_bytes(), "POST"))
            ids.append(answer["ID"])
        return ids

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def config(
    folder: Path,
    http_port: int,
    dicom_port: int,
    aet: str,
    modalities: dict[str, tuple[str, str, int]] | None = None,
    plugins: list[str] | None = None,
    extra: dict | None = None,
) -> dict:
    """Return a throwaway configuration: local storage, no remote access, named peers only."""
    conf = {
        "Name": "reference",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "StorageCompression": False,
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": aet,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpServerEnabled": True,
        "DicomServerEnabled": True,
        "DicomCheckCalledAet": True,
        "DicomCheckModalityHost": True,
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomModalities": {name: list(peer) for name, peer in (modalities or {}).items()},
        "Plugins": list(plugins or []),
        "ConcurrentJobs": 0,
        "KeepAlive": True,
        "TcpNoDelay": True,
        "HttpThreadsCount": 50,
        "SaveJobs": False,
        "LoadPrivateDictionary": False,
        "StableAge": 1,
    }
    conf.update(extra or {})
    return conf


@contextlib.contextmanager
def running(
    modalities: dict[str, tuple[str, str, int]] | None = None,
    plugins: list[str] | None = None,
    aet: str = "REFERENCE",
    extra: dict | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Orthanc]:
    """Start Orthanc on free loopback ports in a temporary folder; stop and delete it after.

    env adds to the process's environment (e.g. TCP_NODELAY=1: Debian's DCMTK, which Orthanc's
    DICOM server uses, leaves Nagle's algorithm on unless told otherwise).
    """
    exe = binary()
    if exe is None:
        raise RuntimeError("Orthanc is not installed (apt-get install orthanc)")
    folder = Path(tempfile.mkdtemp(prefix="orthanc-"))
    http_port, dicom_port = free_port(), free_port()
    conf_path = folder / "orthanc.json"
    conf_path.write_text(
        json.dumps(config(folder, http_port, dicom_port, aet, modalities, plugins, extra))
    )
    log_path = folder / "orthanc.log"
    log = log_path.open("wb")
    process = subprocess.Popen(  # noqa: S603 - the binary found above, our own config
        [exe, "--logdir=" + str(folder), str(conf_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folder,
        env={**os.environ, **(env or {})},
    )
    server = Orthanc(
        f"http://127.0.0.1:{http_port}", dicom_port, aet, process, folder, log_path, plugins or []
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                server.request("/system")
                break
            except (OSError, RuntimeError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Orthanc did not start:\n" + server.log_tail()) from None
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)
