"""Real DICOM peers for the network tests: the receiver on a free port, dcmtk, phantom files."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.filereader import read_preamble

from portal.dicomnet.receiver import Receiver
from portal.models import DicomNode, DicomPeer, Practice


def require_tool(name: str) -> str:
    """Return the path of a dcmtk tool; skip without it on a laptop, fail under CI."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed (apt-get install dcmtk)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def receiving(tls_nodes=()) -> Iterator[int]:
    """Run the receiver on a free loopback port; yield the port, stop it after."""
    port = free_port()
    receiver = Receiver()
    receiver.start("127.0.0.1", port, tls_nodes)
    try:
        yield port
    finally:
        receiver.stop()


def configure(practice: Practice, called: str = "SMILEPACS", calling: str = "CBCT1", **peer):
    """Give a practice a receiver AE title and one device allowed to send from 127.0.0.1."""
    node = DicomNode.objects.create(practice=practice, ae_title=called)
    device = DicomPeer.objects.create(
        practice=practice,
        name=peer.pop("name", "CBCT unit"),
        ae_title=calling,
        address=peer.pop("address", "127.0.0.1"),
        **peer,
    )
    return node, device


def storescu(port: int, files, called: str = "SMILEPACS", calling: str = "CBCT1", *extra: str):
    """Send files with dcmtk's storescu; return the finished process (output kept)."""
    exe = require_tool("storescu")
    return subprocess.run(  # noqa: S603
        [exe, "-aet", calling, "-aec", called, *extra, "127.0.0.1", str(port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def dataset_bytes(data: bytes | Path) -> bytes:
    """Return the bytes after a Part 10 file's meta information: what the network carries."""
    import io

    raw = data.read_bytes() if isinstance(data, Path) else data
    fp = io.BytesIO(raw)
    read_preamble(fp, False)
    pydicom.filereader._read_file_meta_info(fp)
    return raw[fp.tell() :]
