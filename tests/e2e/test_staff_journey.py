"""Staff journeys in Chromium: sign in with TOTP, find, share, print, revoke; upload a folder."""

from __future__ import annotations

import io
import time

import pydicom
from pydicom.data import get_testdata_file

from tests.e2e.conftest import ROOT, fresh_totp

SHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}


def _staff(demo_server: dict, role: str) -> dict:
    return next(s for s in demo_server["staff"] if s["role"] == role)


def _sign_in(page, demo_server: dict, role: str) -> None:
    staff = _staff(demo_server, role)
    page.goto(demo_server["base_url"] + "/login/")
    page.fill("#id_username", staff["username"])
    page.fill("#id_password", demo_server["staff_password"])
    page.click("button[type=submit]")
    page.wait_for_selector("#id_token")
    page.fill("#id_token", fresh_totp(staff["otpauth_uri"]))
    page.click("text=Sign in")
    page.wait_for_selector("text=Find a patient or study")


def test_front_desk_issues_prints_and_revokes_a_link(demo_server, page) -> None:
    """Sign in, find the demo patient, issue a link, print the handout, then revoke it."""
    _sign_in(page, demo_server, "Front desk")
    page.fill("#id_q", "garcia maria")  # a name's words in any order
    page.click("button:has-text('Search')")
    page.click("a.strong:has-text('Maria Demo-Garcia')")
    page.wait_for_selector("text=Share this study")
    # Back from a result shows the results again, not the browser's resubmission error,
    # and the address names no patient.
    page.go_back()
    page.wait_for_selector("a.strong:has-text('Maria Demo-Garcia')")
    assert "garcia" not in page.url.lower() and "results=" in page.url
    for name, size in (("phone", {"width": 390, "height": 844}), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SHOTS / f"search-results-{name}.png"), full_page=True)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= size["width"]
    page.click("a.strong:has-text('Maria Demo-Garcia')")
    page.wait_for_selector("text=Share this study")

    page.check("input[name=recipient_kind][value=patient]")
    page.click("button:has-text('Create link')")
    page.wait_for_selector("text=This link is shown only now")
    url = page.input_value("#share-url")
    password = page.input_value("#share-password")
    code = page.get_attribute("#issued", "data-share")
    assert url.startswith(demo_server["base_url"] + "/s/")
    assert len(password) >= 8
    assert page.locator(".handout svg").count() == 1
    # One tap copies the link; the page is looked at on a phone and a desktop.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("button:has-text('Copy link')")
    page.wait_for_selector("button:has-text('Copied')")
    assert page.evaluate("() => navigator.clipboard.readText()") == url
    for name, size in (("phone", {"width": 390, "height": 844}), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SHOTS / f"link-created-{name}.png"), full_page=True)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= size["width"]

    page.emulate_media(media="print")
    assert not page.locator(".topbar").is_visible()
    assert page.locator(".handout").is_visible()
    assert page.locator(".tearoff").inner_text().count(password) == 1
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    page.emulate_media(media="screen")
    # A reload posts the form again: no second link, and the password is not shown again.
    page.reload()
    page.wait_for_selector("text=This link was already created")
    assert password not in page.content()

    page.goto(demo_server["base_url"] + "/shares/")
    row = page.locator(f"tr[data-share='{code}']")
    assert "Active" in row.inner_text()
    row.locator("summary:has-text('Revoke')").click()
    row.locator("button:has-text('Revoke the link')").click()
    page.wait_for_selector("text=The link is revoked")
    assert "Revoked" in page.locator(f"tr[data-share='{code}']").inner_text()


def _dicom_folder(root, count: int = 3):
    folder = root / "scan"
    folder.mkdir()
    uid = f"1.2.826.0.1.3680043.8.498.{int(time.time())}"
    for i in range(count):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.PatientName = "Upload^Ulla"
        ds.PatientID = "E2E-UP-1"
        ds.StudyInstanceUID = f"{uid}.1"
        ds.SeriesInstanceUID = f"{uid}.1.1"
        ds.SOPInstanceUID = f"{uid}.1.1.{i + 1}"
        ds.InstanceNumber = i + 1
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        (folder / f"IM{i + 1:04d}.dcm").write_bytes(buf.getvalue())
    return folder


def test_clinician_uploads_a_folder(demo_server, page, tmp_path) -> None:
    """Upload a folder of DICOM files: progress reaches 100% and the new study is listed."""
    folder = _dicom_folder(tmp_path)
    _sign_in(page, demo_server, "Clinician")
    page.goto(demo_server["base_url"] + "/upload/")
    page.set_input_files("#pick-folder", folder)
    page.wait_for_selector("a:has-text('Open the study')", timeout=120_000)
    assert page.locator("#overall-bar").get_attribute("value") == "100"
    assert page.locator("#filelist progress").count() == 3
    assert "stored" in page.locator("#report").inner_text()
    page.click("a:has-text('Open the study')")
    page.wait_for_selector("text=ID E2E-UP-1")
    page.goto(demo_server["base_url"] + "/")
    page.fill("#id_q", "E2E-UP-1")
    page.click("button:has-text('Search')")
    page.wait_for_selector("text=1 result")
    assert page.locator("ul.results li.result").count() == 1
    assert "E2E-UP-1" not in page.url  # the search was posted, not put in the address
    # The same folder again: every file a duplicate, and nothing called new.
    page.goto(demo_server["base_url"] + "/upload/")
    page.set_input_files("#pick-folder", folder)
    page.wait_for_selector("a:has-text('Open the study')", timeout=120_000)
    said = page.locator("#report").inner_text()
    assert said.count("duplicate") == 3 and "new" not in said.lower(), said


def test_front_desk_sees_open_upload_links_and_revokes_one(demo_server, page) -> None:
    """An upload link issued by mistake is found under Received and revoked there."""
    _sign_in(page, demo_server, "Front desk")
    page.fill("#id_q", "maria")
    page.click("button:has-text('Search')")
    page.click("a.strong:has-text('Maria Demo-Garcia')")
    page.click("a:has-text('Maria Demo-Garcia')")
    page.fill("#id_sender_name", "Dr Wrong Address")
    page.click("button:has-text('Make an upload link')")
    page.wait_for_selector("text=works until")
    page.goto(demo_server["base_url"] + "/received/")
    row = page.locator(".upload-links li", has_text="Dr Wrong Address")
    row.wait_for()
    for name, size in (("phone", {"width": 390, "height": 844}), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SHOTS / f"received-open-links-{name}.png"), full_page=True)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= size["width"]
    row.locator("summary:has-text('Revoke')").click()
    row.locator("button:has-text('Revoke the link')").click()
    page.wait_for_url(demo_server["base_url"] + "/received/")
    assert page.locator(".upload-links li", has_text="Dr Wrong Address").count() == 0


def test_the_front_desk_reads_how_the_devices_send_here(demo_server, page) -> None:
    """What the CBCT unit's technician asks for, on the arrivals page, phone and desktop."""
    _sign_in(page, demo_server, "Front desk")
    page.goto(demo_server["base_url"] + "/arrivals/")
    said = page.locator("#how-devices-send").inner_text()
    assert "called AE title SMILEPACS" in said and "port 11112" in said, said
    assert "CBCT1" in said, said
    for name, size in (("phone", None), ("desktop", {"width": 1280, "height": 900})):
        if size:
            page.set_viewport_size(size)
        page.screenshot(path=str(SHOTS / f"arrivals-{name}.png"), full_page=True)
