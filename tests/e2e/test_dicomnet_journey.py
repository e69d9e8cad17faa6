"""A referrer gives their software a token; another practice sends images in; staff accept.

Real Chromium at phone and desktop widths, with screenshots of each page left in tmp_path.
"""

from __future__ import annotations

import io
import json
import re
import time
import urllib.request

import pydicom
from pydicom.data import get_testdata_file

from tests.e2e.conftest import ROOT, run_manage
from tests.e2e.recipients import fill_birth_date
from tests.e2e.test_staff_journey import _sign_in

SHOTS = ROOT / "docs" / "screenshots"


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _open_share(page, demo_server: dict) -> None:
    page.goto(demo_server["base_url"] + demo_server["share_path"])
    page.fill("#id_password", demo_server["share_password"])
    fill_birth_date(page, demo_server["share_birth_date"])
    page.click("form[action='/s/'] button[type=submit]")
    page.wait_for_selector("text=Open in your own viewer")


def test_recipient_makes_a_token_for_their_own_viewer(
    demo_server, page, desktop_page, tmp_path
) -> None:
    base = demo_server["base_url"]
    for name, p in (("phone", page), ("desktop", desktop_page)):
        _open_share(p, demo_server)
        p.click("text=Open in your own viewer")
        p.fill("#token-label", f"Weasis on the {name}")
        p.click("button:has-text('Make an access token')")
        p.wait_for_selector("#new-token")
        assert p.get_attribute("a:has-text('Open in Weasis')", "href").startswith("weasis://?")
        pasteable = p.input_value("#dicomweb-paste")
        assert re.match(r"^http://token:pst_[A-Za-z0-9_\-]+@127\.0\.0\.1:\d+/dicomweb$", pasteable)
        _shot(p, f"software-token-{name}")
        p.context.grant_permissions(["clipboard-read", "clipboard-write"])
        p.click("button[data-copy='dicomweb-paste']")  # one tap, on a phone too
        p.wait_for_selector("button[data-copy='dicomweb-paste']:has-text('Copied')")
        assert p.evaluate("() => navigator.clipboard.readText()") == pasteable
        assert p.evaluate("() => document.documentElement.scrollWidth") <= p.viewport_size["width"]
        token = p.input_value("#dicomweb-header").split("Bearer ", 1)[1]
        request = urllib.request.Request(  # noqa: S310 - the e2e server on loopback
            base + "/dicomweb/studies", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            studies = json.loads(response.read())
        assert len(studies) == 1
        p.goto(base + "/s/software/")
        assert token not in p.content()  # shown once


def _scan(patient_id: str = "THEIRS-1", name: str = "", n: int = 7) -> bytes:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    uid = f"1.2.826.0.1.3680043.8.498.{n}{int(time.time())}"
    ds.PatientID = patient_id
    if name:
        ds.PatientName = name
    ds.StudyInstanceUID, ds.SeriesInstanceUID = f"{uid}.1", f"{uid}.1.1"
    ds.SOPInstanceUID = f"{uid}.1.1.1"
    ds.StudyDescription = "CBCT from the oral surgeon"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_another_practice_sends_images_and_staff_accept_them(
    demo_server, page, desktop_page, tmp_path
) -> None:
    staff = desktop_page
    _sign_in(staff, demo_server, "Front desk")
    staff.fill("#id_q", "maria")
    staff.click("button:has-text('Search')")
    staff.click("a.strong:has-text('Maria Demo-Garcia')")
    staff.click("a[href^='/patients/']:has-text('Maria Demo-Garcia')")
    staff.wait_for_selector("text=Make an upload link")
    born = re.search(r"born (\d{4}-\d{2}-\d{2})", staff.content())[1]
    staff.fill("#id_sender_name", "Dr Oral Surgeon")
    staff.click("button:has-text('Make an upload link')")
    staff.wait_for_selector("#upload-url")
    url, password = staff.input_value("#upload-url"), staff.input_value("#upload-password")
    staff.screenshot(path=str(tmp_path / "upload-link-desktop.png"), full_page=True)

    page.goto(url)
    assert page.url.endswith("/u/")  # the token left the address bar
    page.fill("#id_password", password)
    page.click("#show-password")  # a 28-character password is checked by eye before sending
    assert page.get_attribute("#id_password", "type") == "text"
    fill_birth_date(page, born)  # day, month by name and year: no locale can swap them
    _shot(page, "upload-verify-phone")
    page.set_viewport_size({"width": 1440, "height": 900})
    _shot(page, "upload-verify-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("button:has-text('Continue')")
    page.wait_for_selector("text=Each file may be up to")
    scan = {"name": "IM0001.dcm", "mimeType": "application/dicom", "buffer": _scan()}
    # A choice one send cannot carry is told before anything is sent (it used to upload in
    # full, then be refused). The page's limit is lowered here so the test sends megabytes,
    # not half a gigabyte; the server keeps its own.
    page.evaluate("() => { document.getElementById('send-form').dataset.perSend = '6000'; }")
    page.set_input_files("#id_files", files=[{**scan, "name": "cd-export.zip"}])
    page.wait_for_selector("#send-problem:has-text('more than one file may be')")
    assert page.is_disabled("button:has-text('Send')")
    _shot(page, "upload-too-big-phone")
    page.set_viewport_size({"width": 1440, "height": 900})
    _shot(page, "upload-too-big-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    # The second names another patient of the practice (José, by his ID and name).
    other = {"name": "IM0002.dcm", "mimeType": "application/dicom",
             "buffer": _scan("DEMO-0002", "Alvarez-Demo^Jose", n=6)}  # fmt: skip
    page.set_input_files("#id_files", files=[scan, other])
    assert page.is_enabled("button:has-text('Send')")
    page.click("button:has-text('Send')")
    page.wait_for_selector("text=2 files received")
    assert page.url.endswith("/u/")  # sent in the background: a reload sends nothing again
    page.screenshot(path=str(tmp_path / "upload-sent-phone.png"), full_page=True)
    # A link with no room left says so before anything is chosen (a send was read whole,
    # then refused).
    run_manage(
        demo_server, "shell", "-c",
        "from sharing.models import UploadLink; from django.db.models import F; "
        "UploadLink.objects.filter(sender_name='Dr Oral Surgeon')"
        ".update(received_bytes=F('max_bytes'))",
    )  # fmt: skip
    page.goto(demo_server["base_url"] + "/u/")
    page.wait_for_selector("#link-full:has-text('no room left')")
    assert page.is_disabled("button:has-text('Send')")
    _shot(page, "upload-link-full-phone")
    page.set_viewport_size({"width": 1440, "height": 900})
    _shot(page, "upload-link-full-desktop")

    staff.goto(demo_server["base_url"] + "/received/")
    staff.wait_for_selector("text=CBCT from the oral surgeon")
    staff.wait_for_selector(".warning:has-text('names another patient of the practice')")
    _shot(staff, "received-waiting-desktop")
    staff.set_viewport_size({"width": 390, "height": 844})
    _shot(staff, "received-waiting-phone")
    staff.set_viewport_size({"width": 1440, "height": 900})
    staff.click("button:has-text('Accept into')")
    staff.wait_for_selector("text=Accepted 1 file into")
    staff.wait_for_selector("text=1 file not accepted: it names another patient")
    staff.click("button:has-text('Decline')")
    staff.wait_for_selector("text=Nothing is waiting")
