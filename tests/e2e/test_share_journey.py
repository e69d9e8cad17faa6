"""A patient opens the demo link, mistypes the password once, verifies and downloads the ZIP."""

from __future__ import annotations

import contextlib
import hashlib
import io
import sqlite3
import subprocess
import uuid
import zipfile
from pathlib import Path

import pydicom

from portal.demo.data import _cbct_files
from tests.e2e.recipients import fill_birth_date

# `manage.py demo`'s default, which the demo_server fixture uses.
DEMO_CBCT_SLICES = 300


def test_patient_verifies_sees_thumbnails_and_downloads_the_zip(demo_server, page, tmp_path):
    """The ZIP saved by Chromium holds the byte-identical originals, indexed by its DICOMDIR."""
    base = demo_server["base_url"]
    token = demo_server["share_path"].rsplit("/", 1)[1]
    page.goto(base + demo_server["share_path"])
    assert page.url == base + "/s/"

    page.fill("#id_password", "not-the-password-1")
    fill_birth_date(page, demo_server["share_birth_date"])
    page.click("form[action='/s/'] button[type=submit]")
    page.wait_for_selector("text=Those details do not match")
    assert page.url == base + "/s/"

    page.wait_for_timeout(300)  # the doubling delay after one failure is 0.1 s
    page.fill("#id_password", demo_server["share_password"])
    page.click("form[action='/s/'] button[type=submit]")
    page.wait_for_url(base + "/s/home/")
    page.wait_for_selector("text=View the images")

    thumbs = page.locator("img.thumb")
    assert thumbs.count() >= 1
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.thumb')].every(i => i.complete)"
    )
    widths = thumbs.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert all(w > 0 for w in widths), widths

    with page.expect_download(timeout=120_000) as info:
        page.click("text=Download original files")
    download = info.value
    assert download.failure() is None
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    assert path.suffix == ".zip"
    subprocess.run(["unzip", "-tq", str(path)], check=True, capture_output=True)
    _check_zip(path, demo_server)

    log = demo_server["server_log"].read_text()
    # The access log records each request line; the link's own request shows up masked.
    assert '"GET /s/home/ HTTP/1.1" 200' in log
    assert '"GET /s/download/share.zip HTTP/1.1" 200' in log
    assert token not in log
    assert '"GET /s/<token> HTTP/1.1" 303' in log


def _check_zip(path: Path, demo_server: dict) -> None:
    """Assert the ZIP holds exactly the study's originals, indexed by its DICOMDIR."""
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        dicom = [n for n in names if n.startswith("DICOM/")]
        assert dicom and "README.txt" in names
        dicomdir = pydicom.dcmread(io.BytesIO(zf.read("DICOMDIR")))
        listed = {
            "/".join(r.ReferencedFileID): r.ReferencedSOPInstanceUIDInFile
            for r in dicomdir.DirectoryRecordSequence
            if r.DirectoryRecordType == "IMAGE"
        }
        uids, digests = {}, {}
        for name in dicom:
            data = zf.read(name)
            assert data[128:132] == b"DICM", name
            uids[name] = _sop_uid(data)
            digests[uids[name]] = hashlib.sha256(data).hexdigest()
        others = sorted(
            hashlib.sha256(zf.read(n)).hexdigest()
            for n in names
            if n not in (*dicom, "DICOMDIR", "README.txt")
        )
    assert listed == uids
    assert len(digests) == len(dicom)
    stored, attachments = _stored_digests(demo_server)
    assert digests == stored
    assert digests == _demo_originals()
    assert others == attachments


def _sop_uid(data: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)


def _stored_digests(demo_server: dict) -> tuple[dict[str, str], list[str]]:
    """Return the SHA-256 recorded at ingest for the study's instances and attachments.

    Read from the e2e server's own database: {SOP Instance UID: digest}, sorted digests.
    """
    db = demo_server["data_dir"] / "e2e.sqlite3"
    study = uuid.UUID(demo_server["study_code"]).hex
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        instances = conn.execute(
            "SELECT i.sop_instance_uid, o.sha256 FROM portal_instance i"
            " JOIN portal_storedobject o ON o.id = i.blob_id"
            " JOIN portal_series s ON s.id = i.series_id"
            " JOIN portal_study st ON st.id = s.study_id WHERE st.code = ?",
            (study,),
        ).fetchall()
        attachments = conn.execute(
            "SELECT o.sha256 FROM portal_attachment a"
            " JOIN portal_storedobject o ON o.id = a.blob_id"
            " JOIN portal_study st ON st.id = a.study_id WHERE st.code = ?",
            (study,),
        ).fetchall()
    assert instances
    return dict(instances), sorted(d for (d,) in attachments)


def _demo_originals() -> dict[str, str]:
    """Regenerate the demo CBCT exactly as `manage.py demo` hands it to ingest.

    The phantom is deterministic (seeded noise, name-based UIDs), so these are the bytes that
    were uploaded. Return {SOP Instance UID: SHA-256}.
    """
    return {
        _sop_uid(f.getvalue()): hashlib.sha256(f.getvalue()).hexdigest()
        for _, f in _cbct_files(DEMO_CBCT_SLICES)
    }
