"""A patient opens the demo link, mistypes the password once, verifies and downloads the ZIP."""

from __future__ import annotations

import hashlib
import io
import subprocess
import zipfile

import pydicom


def test_patient_verifies_sees_thumbnails_and_downloads_the_zip(demo_server, page, tmp_path):
    """The ZIP saved by Chromium passes unzip -t and its DICOMDIR lists every DICOM file."""
    base = demo_server["base_url"]
    token = demo_server["share_path"].rsplit("/", 1)[1]
    page.goto(base + demo_server["share_path"])
    assert page.url == base + "/s/"

    page.fill("#id_password", "not-the-password-1")
    page.fill("#id_birth_date", demo_server["share_birth_date"])
    page.click("form[action='/s/'] button[type=submit]")
    page.wait_for_selector("text=Those details do not match")
    assert page.url == base + "/s/"

    page.wait_for_timeout(300)  # the doubling delay after one failure is 0.1 s
    page.fill("#id_password", demo_server["share_password"])
    page.fill("#id_birth_date", demo_server["share_birth_date"])
    page.click("form[action='/s/'] button[type=submit]")
    page.wait_for_url(base + "/s/home/")
    page.wait_for_selector("text=Open the viewer")

    thumbs = page.locator("img.thumb")
    assert thumbs.count() >= 1
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.thumb')].every(i => i.complete)"
    )
    widths = thumbs.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert all(w > 0 for w in widths), widths

    with page.expect_download(timeout=120_000) as info:
        page.click("text=Download all")
    download = info.value
    assert download.failure() is None
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    assert path.suffix == ".zip"
    subprocess.run(["unzip", "-tq", str(path)], check=True, capture_output=True)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        dicom = [n for n in names if n.startswith("DICOM/")]
        assert dicom and "README.txt" in names
        dicomdir = pydicom.dcmread(io.BytesIO(zf.read("DICOMDIR")))
        listed = {
            "/".join(r.ReferencedFileID)
            for r in dicomdir.DirectoryRecordSequence
            if r.DirectoryRecordType == "IMAGE"
        }
        assert listed == set(dicom)
        first = zf.read(dicom[0])
        assert first[128:132] == b"DICM"
        assert len(hashlib.sha256(first).hexdigest()) == 64
    assert token not in demo_server["server_log"].read_text()
