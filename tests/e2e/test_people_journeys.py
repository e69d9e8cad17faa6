"""The patient on a phone, the referring dentist and the front desk, in Chromium, as each sees it.

Every page of these journeys is checked with axe-core (no serious or critical violation), the
closed page included. Screenshots of the verification page and the viewer, at phone and
desktop size, go to docs/screenshots/. The front desk's list of links:
test_front_desk_links_journey.py.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path

import pydicom

from portal.demo.phantom import PhantomGeometry
from tests.e2e import axe
from tests.e2e.conftest import run_manage
from tests.e2e.people import DESKTOP, PHONE, SHOTS, shot
from tests.e2e.recipients import LINK_PASSWORD, fill_birth_date, issue


def _axial_index(page) -> int:
    return page.evaluate("() => window.viewer.panes.axial.index")


def _touch_drag(page, x: float, y0: float, y1: float, steps: int, pause_ms: int, rest_ms: int):
    """Drag a finger with real touch events (Chromium turns them into pointer events)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y0}]})
    for i in range(1, steps + 1):
        y = y0 + (y1 - y0) * i / steps
        cdp.send(
            "Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]}
        )
        time.sleep(pause_ms / 1000)
    time.sleep(rest_ms / 1000)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def _tap_heights(page, selector: str) -> list[float]:
    return page.eval_on_selector_all(
        selector, "els => els.map(e => e.getBoundingClientRect().height)"
    )


def test_a_patient_on_a_phone_verifies_views_and_downloads(demo_server, phone, tmp_path):
    page = phone
    base = demo_server["base_url"]
    page.goto(base + demo_server["share_path"])
    axe.check(page, "verify")
    # The birth date is day, month by name and year, in the practice's order (month first).
    order = page.eval_on_selector_all(
        ".dateparts input, .dateparts select", "els => els.map(e => e.name)"
    )
    assert order == ["birth_month", "birth_day", "birth_year"]
    assert "July" in page.inner_text("#id_birth_month")

    # A typo in the 28-character password: the page says so, keeps what was typed and warns.
    typo = demo_server["share_password"][:-1] + "x"
    page.fill("#id_password", typo)
    fill_birth_date(page, demo_server["share_birth_date"])
    page.click("form[action='/s/'] button[type=submit]")
    page.wait_for_selector("text=Those details do not match")
    assert "tries left before the link locks" in page.inner_text("#form-error")
    assert page.input_value("#id_password") == typo
    assert page.input_value("#id_birth_year") == demo_server["share_birth_date"][:4]
    assert page.evaluate("document.activeElement.id") == "form-error"
    axe.check(page, "verify after a refusal")
    page.click("#show-password")
    assert page.get_attribute("#id_password", "type") == "text"
    assert page.inner_text("#show-password") == "Hide"
    shot(page, "verify-phone")
    page.set_viewport_size(DESKTOP)
    shot(page, "verify-desktop")
    page.set_viewport_size(PHONE)

    page.fill("#id_password", demo_server["share_password"])
    page.click("form[action='/s/'] button[type=submit]")
    page.wait_for_url(base + "/s/home/")
    axe.check(page, "recipient home")
    pictures = page.locator("#download-pictures")
    assert "Pictures to look at" in pictures.inner_text()
    assert re.search(r"about [\d.]+\xa0MB", pictures.inner_text())
    originals = page.locator("#download-originals").inner_text()
    assert "dentist's software" in originals and re.search(r"[\d.]+\xa0MB", originals)
    assert re.search(r"\((EST|EDT)\)", page.inner_text("#expiry"))  # the practice's zone
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    heights = _tap_heights(page, "a.tap, .choice-card .button, .button.big")
    assert heights and min(heights) >= 44, heights

    page.click("text=View the images")
    page.wait_for_selector("#viewport[data-state='ready'][data-plane='axial']")
    axe.check(page, "viewer")
    assert page.inner_text(".topbar .brand") == "Smile Dental Studio"
    assert page.locator("a.back").is_visible()
    canvas = page.locator(".pane[data-plane='axial'] canvas").bounding_box()
    assert canvas["height"] >= 0.6 * PHONE["height"], canvas  # the image comes first
    assert re.fullmatch(r"\d+ / 300", page.inner_text(".pane[data-plane='axial'] .pane-pos"))
    edges = [page.inner_text(f".pane[data-plane='axial'] .edge-{e}") for e in ("left", "right")]
    assert edges == ["R", "L"], edges
    assert page.locator("#slice-slider").is_visible()
    assert not page.locator("[data-tool=length]").is_visible()  # simple tools for a patient
    looks = page.eval_on_selector_all("#preset option", "os => os.map(o => o.textContent)")
    assert "Teeth" in looks and "Lung" not in looks

    # A slow thumb: about one slice per 9 px; a flick goes on after the finger lifts.
    box = page.locator(".pane[data-plane='axial'] canvas").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.7
    start = _axial_index(page)
    _touch_drag(page, x, y, y - 140, steps=28, pause_ms=25, rest_ms=200)
    moved = _axial_index(page) - start
    assert 13 <= moved <= 18, moved
    # On a loaded machine the lift can reach the page late, which reads as a finger that
    # rested (no flick), as it would for a person: a few tries, one of which must coast.
    coasts = []
    for _ in range(3):
        released = _axial_index(page)
        _touch_drag(page, x, y, y - 90, steps=6, pause_ms=8, rest_ms=0)
        after_lift = _axial_index(page)
        page.wait_for_timeout(700)
        coasts.append((released, after_lift, _axial_index(page)))
        if coasts[-1][2] > after_lift > released:
            break
    assert coasts[-1][2] > coasts[-1][1] > coasts[-1][0], coasts
    # The practice's name is read whole, and the tool bar is all on the screen.
    brand = page.locator(".topbar .brand")
    assert brand.evaluate(
        "el => el.scrollWidth <= el.clientWidth + 1 && el.scrollHeight <= el.clientHeight + 1"
    ), f"the practice's name is cut short: {brand.inner_text()!r}"
    tools = page.locator("#toolbar").bounding_box()
    assert tools["y"] + tools["height"] <= PHONE["height"] + 0.5, tools
    shot(page, "viewer-phone")

    page.click("#drawer-open")
    page.wait_for_selector("#drawer.open")
    axe.check(page, "viewer drawer")
    # A photo is told as a photo: not "Axial", not the study's CT.
    page.click(".series-list .item[data-kind='photo']")
    page.wait_for_selector("#viewer[data-kind='photo']")
    assert page.locator("#meta-modality").text_content() == "Photo"
    assert not page.locator("#viewport .pane-label").first.is_visible()
    shot(page, "viewer-photo-phone")
    page.click("#drawer-open")
    page.wait_for_selector("#drawer.open")
    page.click(".series-list .item[data-kind='pdf']")
    page.wait_for_selector("#viewer[data-kind='pdf']")
    assert page.locator("#pdf-view").is_visible()
    for tool in ("[data-tool=scroll]", "#preset", "#fit", "#slice-slider"):
        assert not page.locator(tool).is_visible(), tool

    page.click("a.back")
    page.wait_for_url(base + "/s/home/")
    with page.expect_download(timeout=120_000) as info:
        page.click("#download-pictures a")
    download = info.value
    assert download.suggested_filename == (
        "smile-dental-studio-cbct-maxilla-and-mandible-2026-10-05-pictures.zip"
    )
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    names = zipfile.ZipFile(path).namelist()
    assert any(n.startswith("Documents/") and n.endswith(".pdf") for n in names), names[-5:]
    assert any(n.startswith("Photos/") for n in names)

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.click("text=Close the shared images")
    page.wait_for_selector("text=You have closed the shared images")
    assert "paper from the practice" in page.inner_text("main")
    axe.check(page, "closed")
    # Back to the images afterwards says how to get back in, not only "not found".
    page.go_back()
    page.wait_for_selector("text=open the link again from your email")
    shot(page, "visit-ended-phone")


def test_asking_for_a_code_on_a_link_withdrawn_meanwhile_says_so(demo_server, desktop):
    """The page asked for its code by script: a link ended meanwhile led to a bare 405."""
    page = desktop
    link = issue(demo_server, recipient_kind="referrer", recipient_email="dr.ng@example.org",
                 recipient_name="Dr Ng")  # fmt: skip
    page.goto(demo_server["base_url"] + link["path"])
    page.wait_for_selector("text=Email me a code")
    script = (
        "from django.utils import timezone; from sharing.models import ShareLink; "
        f"ShareLink.objects.filter(code='{link['code']}').update(revoked_at=timezone.now())"
    )
    run_manage(demo_server, "shell", "-c", script)
    page.click("text=Email me a code")
    page.wait_for_selector("text=This link has been withdrawn")
    assert page.url == demo_server["base_url"] + "/s/"


def test_a_referrer_signs_in_with_an_emailed_code_and_measures(demo_server, desktop, tmp_path):
    page = desktop
    base = demo_server["base_url"]
    link = issue(demo_server, recipient_kind="referrer", recipient_email="dr.lee@example.org",
                 recipient_name="Dr Lee (oral surgeon)")  # fmt: skip
    page.goto(base + link["path"])
    axe.check(page, "referrer verify")
    # The password first, as people do: asking for the code keeps it (it was wiped).
    page.fill("#id_password", LINK_PASSWORD)
    page.click("text=Email me a code")
    page.wait_for_selector("text=A code is on its way")
    assert page.input_value("#id_password") == LINK_PASSWORD
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SHOTS / "referrer-code-sent-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(SHOTS / "referrer-code-sent-desktop.png"), full_page=True)
    first = _last_code(demo_server["mail_dir"], "dr.lee@example.org")
    page.click("text=Email me a code")  # again at once: nothing is sent, and it says so
    page.wait_for_selector("text=No new code was sent")
    assert "on its way" not in page.inner_text("main")
    assert _last_code(demo_server["mail_dir"], "dr.lee@example.org") == first
    assert page.input_value("#id_password") == LINK_PASSWORD
    page.fill("#id_code", first)
    page.click("form[action='/s/'] button[type=submit]")
    page.wait_for_url(base + "/s/home/")
    axe.check(page, "referrer home")
    page_text = page.inner_text("main")
    assert page_text.index("Original files") < page_text.index("Pictures to look at")

    page.click("text=View the images")
    page.wait_for_selector("#viewport[data-state='ready'][data-plane='axial']")
    assert page.get_attribute("#viewer", "data-mode") == "full"
    page.eval_on_selector(
        "#slice-slider", "el => { el.value = '100'; el.dispatchEvent(new Event('input')); }"
    )
    page.wait_for_selector("#viewport[data-slice-index='100'][data-state='ready']")
    scale = page.locator(".pane[data-plane='axial'] .scalebar")
    assert scale.is_visible() and re.fullmatch(r"\d+ (mm|cm)", scale.inner_text()), (
        scale.inner_text()
    )

    geometry = PhantomGeometry()
    canvas = page.locator(".pane[data-plane='axial'] canvas")
    box, data = canvas.bounding_box(), canvas.evaluate("c => ({...c.dataset})")
    ox, oy = float(data["originX"]), float(data["originY"])
    sx, sy = float(data["pxPerCol"]), float(data["pxPerRow"])
    points = [(box["x"] + ox + (c + 0.5) * sx, box["y"] + oy + (r + 0.5) * sy)
              for r, c in geometry.marker_pixels()]  # fmt: skip
    page.click("[data-tool=length]")
    for _ in range(2):
        page.mouse.move(*points[0])
        page.mouse.down()
        page.mouse.move(*points[1], steps=8)
        page.mouse.up()
    items = page.locator("#measure-list li")
    assert items.count() == 2
    measured = float(re.search(r"Length ([\d.]+) mm", items.first.inner_text()).group(1))
    assert abs(measured - geometry.marker_distance_mm) <= geometry.marker_distance_mm * 0.01
    items.nth(1).locator("button:has-text('Remove')").click()
    assert items.count() == 1
    with page.expect_download() as info:
        page.click("#measure-csv")
    csv_path = tmp_path / "measurements.csv"
    info.value.save_as(csv_path)
    rows = csv_path.read_text().splitlines()
    assert rows[0].startswith("number,type,value,unit") and rows[1].startswith("1,length,")
    page.eval_on_selector(  # another slice: the measurement stays with its own
        "#slice-slider", "el => { el.value = '101'; el.dispatchEvent(new Event('input')); }"
    )
    page.wait_for_selector("#viewport[data-slice-index='101'][data-state='ready']")

    page.click("#tags-load")
    page.wait_for_selector("#tags-table:not([hidden])")
    tags = page.inner_text("#tags-table")
    assert "Patient's Name" in tags and "Demo-Garcia^Maria" in tags
    axe.check(page, "viewer, full tools")

    page.click("#layout-toggle")
    page.wait_for_selector("#viewport.triple")
    for plane in ("axial", "coronal", "sagittal"):
        page.wait_for_selector(f".pane[data-plane='{plane}'][data-slice-index]")
        letters = [
            page.inner_text(f".pane[data-plane='{plane}'] .edge-{e}") for e in ("top", "left")
        ]
        assert all(letters), (plane, letters)
    stage = page.locator("#viewport").bounding_box()
    axial = page.locator(".pane[data-plane='axial']").bounding_box()
    assert axial["width"] * axial["height"] >= 0.45 * stage["width"] * stage["height"]
    # A click in the coronal view moves the axial view to the slice at that height.
    page.click("[data-tool=scroll]")
    coronal = page.locator(".pane[data-plane='coronal'] canvas")
    cbox, cdata = coronal.bounding_box(), coronal.evaluate("c => ({...c.dataset})")
    row = 60
    at_x = cbox["x"] + float(cdata["originX"]) + 40 * float(cdata["pxPerCol"])
    at_y = cbox["y"] + float(cdata["originY"]) + (row + 0.5) * float(cdata["pxPerRow"])
    page.mouse.click(at_x, at_y)
    assert _axial_index(page) == 300 - 1 - row
    page.wait_for_selector(f".pane[data-plane='axial'][data-slice-index='{299 - row}']")
    shot(page, "viewer-desktop")

    page.click("a.back")
    with page.expect_download(timeout=120_000) as info:
        page.click("#download-originals a")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.name.endswith("-original-files.zip")
    with zipfile.ZipFile(path) as zf:
        dicomdir = pydicom.dcmread(io.BytesIO(zf.read("DICOMDIR")))
    patient = next(
        r for r in dicomdir.DirectoryRecordSequence if r.DirectoryRecordType == "PATIENT"
    )
    assert str(patient.PatientName) == "Demo-Garcia^Maria"


def _last_code(mail_dir: Path, to: str) -> str:
    found = []
    for message in sorted(mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime):
        text = message.read_text()
        for part in text.split(
            "\n-------------------------------------------------------------------------------\n"
        ):
            if f"To: {to}" in part and "sign-in code" in part:
                found.append(re.search(r"Your sign-in code is (\d{6})", part).group(1))
    assert found, "no code was emailed"
    return found[-1]
