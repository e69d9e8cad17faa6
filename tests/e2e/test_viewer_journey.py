"""A recipient opens the demo CBCT in the viewer: scroll, preset, measure, reformat, screenshots."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from portal.demo.phantom import PhantomGeometry
from tests.e2e.conftest import ROOT, fresh_page, fresh_totp, run_manage
from tests.e2e.recipients import fill_birth_date, issue, verify_patient

SHOTS = ROOT / "docs" / "screenshots"


def _open_share(demo_server: dict, page) -> None:
    page.goto(demo_server["base_url"] + demo_server["share_path"])
    page.fill("#id_password", demo_server["share_password"])
    fill_birth_date(page, demo_server["share_birth_date"])
    page.click("form[action='/s/'] button[type=submit]")
    page.click("text=View the images")


def _open_as_clinician(demo_server: dict, page) -> None:
    staff = next(s for s in demo_server["staff"] if s["role"] == "Clinician")
    page.goto(demo_server["base_url"] + "/login/")
    page.fill("#id_username", staff["username"])
    page.fill("#id_password", demo_server["staff_password"])
    page.click("button[type=submit]")
    page.wait_for_selector("#id_token")
    page.fill("#id_token", fresh_totp(staff["otpauth_uri"]))
    page.click("text=Sign in")
    page.wait_for_selector("text=Find a patient or study")
    page.goto(f"{demo_server['base_url']}/studies/{demo_server['study_code']}/")
    page.click("text=Open viewer")


def _wait_ready(page, plane: str, index: int | None = None) -> None:
    selector = f"#viewport[data-plane='{plane}'][data-state='ready']"
    if index is not None:
        selector += f"[data-slice-index='{index}']"
    page.wait_for_selector(selector)


def _marker_points(page) -> list[tuple[float, float]]:
    """Where the demo CBCT's two fiducial markers are on the screen, in the axial pane."""
    canvas = _pane(page, "axial")
    box = canvas.bounding_box()
    data = canvas.evaluate("c => ({...c.dataset})")
    ox, oy = float(data["originX"]), float(data["originY"])
    sx, sy = float(data["pxPerCol"]), float(data["pxPerRow"])
    return [
        (box["x"] + ox + (col + 0.5) * sx, box["y"] + oy + (row + 0.5) * sy)
        for row, col in PhantomGeometry().marker_pixels()
    ]


def _not_blank(png: bytes) -> None:
    image = Image.open(io.BytesIO(png)).convert("L")
    stat = ImageStat.Stat(image)
    lo, hi = image.getextrema()
    assert hi - lo > 100, "the viewport looks blank"
    assert stat.stddev[0] > 10, "the viewport looks blank"


def _pane(page, plane: str):
    return page.locator(f"#viewport .pane[data-plane='{plane}'] canvas")


@pytest.mark.parametrize("opener", [_open_share, _open_as_clinician], ids=["share", "staff"])
def test_viewer_scrolls_measures_and_reformats_the_cbct(
    demo_server, desktop_page, tmp_path, opener
):
    """Scroll to slice 100, bone preset, measure the 40 mm fiducials, coronal and sagittal."""
    page = desktop_page
    opener(demo_server, page)
    _wait_ready(page, "axial")
    assert page.get_attribute("#viewport", "data-kind") == "volume"

    page.eval_on_selector(
        "#slice-slider", "el => { el.value = '100'; el.dispatchEvent(new Event('input')); }"
    )
    _wait_ready(page, "axial", 100)
    page.select_option("#preset", label="Bone")
    page.wait_for_selector("#viewport[data-window='500/2000'][data-state='ready']")

    geometry = PhantomGeometry()
    canvas = _pane(page, "axial")
    points = _marker_points(page)
    if page.get_attribute("#viewer", "data-mode") == "simple":
        page.click("#mode-toggle")
    page.click("[data-tool=length]")
    page.mouse.move(*points[0])
    page.mouse.down()
    page.mouse.move(*points[1], steps=8)
    page.mouse.up()
    text = page.locator("#measure-list li").first.inner_text()
    measured = float(re.search(r"Length ([\d.]+) mm", text).group(1))
    assert abs(measured - geometry.marker_distance_mm) <= geometry.marker_distance_mm * 0.01
    _not_blank(canvas.screenshot(path=str(tmp_path / "axial.png")))

    for plane in ("coronal", "sagittal"):
        page.click(f".planes [data-plane='{plane}']")
        _wait_ready(page, plane)
        _not_blank(_pane(page, plane).screenshot(path=str(tmp_path / f"{plane}.png")))

    page.click("#layout-toggle")
    page.wait_for_selector("#viewport.triple")
    _not_blank(page.locator("#viewport").screenshot(path=str(tmp_path / "three.png")))


def test_viewer_works_on_a_phone(demo_server, browser):
    """At 375 px wide the viewer fits, scrolls with the keyboard and paints an image."""
    phone = {"width": 375, "height": 740}
    with fresh_page(browser, 20_000, viewport=phone, has_touch=True) as page:
        _open_share(demo_server, page)
        _wait_ready(page, "axial")
        start = int(page.get_attribute("#viewport", "data-slice-index"))
        page.keyboard.press("ArrowDown")
        _wait_ready(page, "axial", start + 1)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        _not_blank(_pane(page, "axial").screenshot())
        page.click("#mode-toggle")  # More tools: every one within the screen, wrapped
        page.wait_for_selector("#mode-toggle[aria-pressed='true']")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.screenshot(path=str(SHOTS / "viewer-more-tools-phone.png"))


def test_measurements_stay_for_the_tab_through_a_reload_and_nowhere_else(demo_server, browser):
    """A recipient who reloads keeps the measurements; another tab starts with none."""
    with fresh_page(browser, 30_000, viewport={"width": 1280, "height": 800}) as page:
        _open_share(demo_server, page)
        _wait_ready(page, "axial")
        page.eval_on_selector(
            "#slice-slider", "el => { el.value = '100'; el.dispatchEvent(new Event('input')); }"
        )
        _wait_ready(page, "axial", 100)
        start, end = _marker_points(page)
        if page.get_attribute("#viewer", "data-mode") == "simple":
            page.click("#mode-toggle")
        page.click("[data-tool=length]")
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(*end, steps=8)
        page.mouse.up()
        listed = page.locator("#measure-list li").first.text_content()
        assert "Length" in listed and "Axial 101" in listed

        page.reload()
        _wait_ready(page, "axial")
        page.wait_for_selector("#measure-list li", state="attached")
        assert page.locator("#measure-list li").count() == 1
        assert page.locator("#measure-list li").first.text_content() == listed
        if page.get_attribute("#viewer", "data-mode") == "simple":
            page.click("#mode-toggle")
        if not page.is_visible("#measure-list li button:text('Show')"):
            page.click("#drawer-open")
        page.click("#measure-list li button:text('Show')")
        _wait_ready(page, "axial", 100)  # "Show" still finds its slice

        other = page.context.new_page()  # a second tab of the same session
        other.set_default_timeout(30_000)
        other.goto(page.url)
        _wait_ready(other, "axial")
        assert other.locator("#measure-list li").count() == 0
        other.close()

        # Closing the shared images (a shared computer) forgets them in the browser too.
        page.goto(demo_server["base_url"] + "/s/home/")
        page.click("text=Close the shared images")
        page.wait_for_selector("text=You have closed the shared images")
        kept = page.evaluate(
            "Object.keys(sessionStorage).filter(k => /^(measures|dental-canal):/.test(k))"
        )
        assert kept == [], kept


def test_a_link_withdrawn_while_viewing_leads_to_the_page_that_says_so(demo_server, browser):
    """The viewer said only "This image could not be loaded (404)" once the link was revoked
    (or expired, or the session idled out): the recipient had no way back."""
    link = issue(demo_server, recipient_kind="patient", recipient_name="Maria (viewing)")
    with fresh_page(browser, 30_000, viewport={"width": 390, "height": 844}, is_mobile=True,
                    has_touch=True) as page:  # fmt: skip
        verify_patient(page, demo_server, link["path"])
        page.click("text=View the images")
        _wait_ready(page, "axial")
        script = (
            "from django.utils import timezone; from sharing.models import ShareLink; "
            f"ShareLink.objects.filter(code='{link['code']}').update(revoked_at=timezone.now())"
        )
        run_manage(demo_server, "shell", "-c", script)
        page.eval_on_selector(
            "#slice-slider", "el => { el.value = '250'; el.dispatchEvent(new Event('input')); }"
        )
        page.wait_for_url(demo_server["base_url"] + "/s/")
        page.wait_for_selector("text=This link has been withdrawn")


def test_the_chosen_tool_and_plane_are_told_to_a_screen_reader(demo_server, page):
    """Which tool or plane was chosen showed only as a colour."""
    _open_share(demo_server, page)
    _wait_ready(page, "axial")
    pressed = "sel => [...document.querySelectorAll(sel)].map(b => b.getAttribute('aria-pressed'))"
    assert page.evaluate(pressed, "[data-tool='scroll'], [data-tool='pan']") == ["true", "false"]
    page.click("[data-tool='pan']")
    assert page.evaluate(pressed, "[data-tool='scroll'], [data-tool='pan']") == ["false", "true"]
    page.click("#mode-toggle")  # the planes are among "More tools"
    page.click(".planes [data-plane='coronal']")
    assert page.evaluate(pressed, ".planes [data-plane]") == ["false", "true", "false"]
    # Scrolling does not read out every slice number; a failure is still said.
    assert page.get_attribute("#slice-label", "aria-live") == "off"


def test_a_patient_saves_the_picture_on_the_screen_from_a_phone(demo_server, browser):
    """Only ZIPs of every image were offered: one picture could not be kept."""
    with fresh_page(browser, 30_000, viewport={"width": 390, "height": 844}, is_mobile=True,
                    has_touch=True) as page:  # fmt: skip
        _open_share(demo_server, page)
        _wait_ready(page, "axial")
        page.eval_on_selector(
            "#slice-slider", "el => { el.value = '100'; el.dispatchEvent(new Event('input')); }"
        )
        _wait_ready(page, "axial", 100)
        page.screenshot(path=str(SHOTS / "viewer-save-picture-phone.png"))
        with page.expect_download() as download:
            page.click("#save-picture")
        saved = download.value
        assert saved.suggested_filename.endswith("-axial-101.jpg"), saved.suggested_filename
        data = Path(saved.path()).read_bytes()
        assert Image.open(io.BytesIO(data)).format == "JPEG"
        page.set_viewport_size({"width": 1366, "height": 900})
        page.screenshot(path=str(SHOTS / "viewer-save-picture-desktop.png"))


def test_a_staff_member_whose_session_idled_out_is_sent_to_sign_in(demo_server, browser):
    """The first image after the idle sign-out came back as the sign-in page: the viewer
    said only that it could not be loaded."""
    with fresh_page(browser, 30_000, viewport={"width": 1366, "height": 900}) as page:
        _open_as_clinician(demo_server, page)
        _wait_ready(page, "axial")
        cookies = page.context.cookies()
        key = next(c["value"] for c in cookies if c["name"].endswith("portal_session"))
        script = (
            "from importlib import import_module; from django.conf import settings; "
            "from portal.workspace.sessions import SEEN_AT; "
            "s = import_module(settings.SESSION_ENGINE).SessionStore(session_key="
            + repr(key)
            + "); "
            "s[SEEN_AT] = s[SEEN_AT] - 7200; s.save()"
        )
        run_manage(demo_server, "shell", "-c", script)
        page.eval_on_selector(
            "#slice-slider", "el => { el.value = '250'; el.dispatchEvent(new Event('input')); }"
        )
        page.wait_for_url(re.compile(r".*/login/\?next=/viewer/studies/"))
