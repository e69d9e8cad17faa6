"""A recipient opens the demo CBCT's panoramic from the share link, on a desktop and on a phone:
drags a dot of the arch curve (the panoramic follows), opens cross-sections, measures on one
in mm, traces the canal (kept in the tab only) and saves the panoramic as a picture."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e import axe
from tests.e2e.recipients import fill_birth_date

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PORTAL_E2E_SCREENSHOTS", tmp_path / "shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open_panoramic(demo_server: dict, page) -> None:
    page.goto(demo_server["base_url"] + demo_server["share_path"])
    page.fill("#id_password", demo_server["share_password"])
    fill_birth_date(page, demo_server["share_birth_date"])
    page.click("form[action='/s/'] button[type=submit]")
    page.click("text=View the images")
    page.wait_for_selector("#viewport[data-kind='volume'][data-state='ready']")


def _open_panoramic_view(page) -> None:
    page.click("#dental-toggle")
    page.wait_for_selector("#dental[data-state='ready']")


def _ready_after(page, attribute: str, before: str | None) -> None:
    page.wait_for_function(
        """([name, before]) => {
            const box = document.querySelector('#dental');
            return box.dataset.state === 'ready' && box.getAttribute(name) !== before;
        }""",
        arg=[attribute, before],
    )


def _dot(page, index: int) -> tuple[float, float]:
    """Return the page position of one control dot of the curve."""
    box = page.locator(".dpane[data-view='axial'] canvas").bounding_box()
    at = page.evaluate(
        """i => { const v = window.viewer.dental, a = v.axial, p = v.state.curve.points[i];
          return [a.ox + (p[0] + 0.5) * a.sp[1] * a.scale,
                  a.oy + (p[1] + 0.5) * a.sp[0] * a.scale]; }""",
        index,
    )
    return box["x"] + at[0], box["y"] + at[1]


def _drag(page, touch, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag with the mouse, or with a finger (Chromium's touch events) on a phone."""
    if touch is None:
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(*end, steps=8)
        page.mouse.up()
        return
    touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [
        {"x": start[0], "y": start[1]}]})  # fmt: skip
    for k in range(1, 9):
        x = start[0] + (end[0] - start[0]) * k / 8
        y = start[1] + (end[1] - start[1]) * k / 8
        touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
            {"x": x, "y": y}]})  # fmt: skip
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def _tap(page, touch, x: float, y: float) -> None:
    if touch is None:
        page.mouse.click(x, y)
    else:
        page.touchscreen.tap(x, y)


def _fits_the_screen(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for selector in ("#toolbar", ".dental-bar"):
        for box in page.eval_on_selector_all(
            f"{selector} button:not([hidden]), {selector} select",
            "els => els.filter(e => e.offsetParent).map(e => e.getBoundingClientRect().toJSON())",
        ):
            assert 0 <= box["left"] and box["right"] <= width + 0.5, (selector, box)


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_panoramic_cross_sections_measure_and_canal(demo_server, browser, tmp_path, screen):
    """The panoramic follows the curve; a cross-section measures in mm; the canal stays local."""
    phone = screen == "phone"
    context = browser.new_context(
        viewport=PHONE if phone else DESKTOP, has_touch=phone, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method != "GET" else None)
    # The viewer waits for its own turn: the server's "too many at once" never shows in the
    # browser's console as a failed request.
    busy = []
    page.on("response", lambda r: busy.append(r.url) if r.status == 429 else None)
    touch = context.new_cdp_session(page) if phone else None
    shots = _shots(tmp_path)
    try:
        _open_panoramic(demo_server, page)
        posts.clear()  # verification posted; from here on the viewer only reads
        width = PHONE["width"] if phone else DESKTOP["width"]
        _fits_the_screen(page, width)  # the patient's few tools
        page.click("#mode-toggle")
        _fits_the_screen(page, width)  # and all of them
        _open_panoramic_view(page)
        _fits_the_screen(page, width)
        assert busy == [], busy
        axe.check(page, f"dental view ({screen})")
        # The panoramic starts at the patient's right, and says so; so does the axial pane.
        for view in ("panoramic", "axial"):
            edges = f".dpane[data-view='{view}'] .overlay"
            assert page.text_content(f"{edges} .edge-left") == "R"
            assert page.text_content(f"{edges} .edge-right") == "L"

        before = page.get_attribute("#dental", "data-panoramic")
        x, y = _dot(page, 2)
        _drag(page, touch, (x, y), (x - 25, y + 12))
        _ready_after(page, "data-panoramic", before)

        panoramic = page.locator(".dpane[data-view='panoramic'] canvas")
        box = panoramic.bounding_box()
        at_before = page.get_attribute("#dental", "data-at")
        _tap(page, touch, box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
        _ready_after(page, "data-at", at_before)
        at = float(page.get_attribute("#dental", "data-at"))
        length = page.evaluate("window.viewer.dental.state.path.length_mm")
        assert 0.1 * length < at < 0.5 * length

        page.click("[data-dtool=length]")
        k = 1 if phone else 2
        section = page.locator(f".dpane[data-view='section'][data-k='{k}'] canvas")
        sbox = section.bounding_box()
        start = (sbox["x"] + sbox["width"] * 0.25, sbox["y"] + sbox["height"] * 0.55)
        end = (sbox["x"] + sbox["width"] * 0.75, sbox["y"] + sbox["height"] * 0.55)
        _drag(page, touch, start, end)
        px_per_mm = page.evaluate(f"window.viewer.dental.sections[{k}].scale")
        expected = (end[0] - start[0]) / px_per_mm
        text = page.locator("#measure-list li").first.text_content()
        measured = float(re.search(r"Length ([\d.]+) mm", text).group(1))
        assert abs(measured - expected) <= 0.5, (measured, expected)
        assert "Cross-section at" in text
        measured_on = page.evaluate("JSON.stringify(window.viewer.dental.state.curve.points)")

        page.click("[data-dtool=canal]")
        for fraction in (0.25, 0.4, 0.55, 0.7):
            _tap(page, touch, box["x"] + box["width"] * fraction, box["y"] + box["height"] * 0.7)
        page.wait_for_selector("#dental[data-canal='4']")
        _tap(page, touch, sbox["x"] + sbox["width"] * 0.45, sbox["y"] + sbox["height"] * 0.8)
        page.wait_for_selector("#dental[data-canal='5']")  # placed exactly on a cross-section
        stored = page.evaluate(
            "Object.keys(sessionStorage).filter(k => k.startsWith('dental-canal:'))"
            ".map(k => JSON.parse(sessionStorage.getItem(k)))"
        )
        assert len(stored) == 1 and len(stored[0]) == 5
        assert posts == [], posts  # the tracing and measurements went nowhere

        page.wait_for_selector("#dental[data-state='ready']")
        page.wait_for_timeout(300)
        page.screenshot(path=str(shots / f"dental-panoramic-{screen}.png"))
        page.locator(".dental-views").screenshot(
            path=str(shots / f"dental-cross-sections-{screen}.png")
        )

        if phone:
            page.click("#drawer-open")
        with page.expect_download() as info:
            page.click("#save-panoramic")
        download = info.value
        assert download.suggested_filename.endswith("-panoramic.jpg")
        picture = Image.open(io.BytesIO(Path(download.path()).read_bytes()))
        assert picture.format == "JPEG" and picture.width > 200
        assert json.dumps(posts) == "[]"

        before = page.get_attribute("#dental", "data-panoramic")
        page.click("#curve-reset")  # the dragged dot goes back
        _ready_after(page, "data-panoramic", before)
        if phone:
            page.click("#drawer-close")
        page.click("#dental-toggle")  # back to the slices
        page.wait_for_selector("#viewport[data-state='ready']")
        assert page.is_hidden("#dental")

        # A reload keeps the measurement and the canal for this tab; "Show" goes back to the
        # cross-section it was taken on.
        where = float(re.search(r"Cross-section at ([\d.]+) mm", text).group(1))
        page.reload()
        page.wait_for_selector("#measure-list li", state="attached")
        assert page.locator("#measure-list li").first.text_content() == text
        page.wait_for_selector("#dental-toggle", state="visible")  # the arch is found again
        if page.get_attribute("#viewer", "data-mode") == "simple":
            page.click("#mode-toggle")
        if phone:
            page.click("#drawer-open")
        page.click("#measure-list li button:text('Show')")
        page.wait_for_selector("#dental[data-state='ready']")
        assert float(page.get_attribute("#dental", "data-at")) == where
        # ... along the curve it was measured on (dragged, then reset before the reload).
        shown_on = page.evaluate("JSON.stringify(window.viewer.dental.state.curve.points)")
        assert shown_on == measured_on
        assert page.get_attribute("#dental", "data-canal") == "5"
        assert posts == [], posts
    finally:
        context.close()


def test_the_three_view_layout_draws_no_reference_lines_on_dental_panes(demo_server, browser):
    """Reference lines belong to the axial, coronal and sagittal panes, not the dental view's."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(30_000)
    pixels = "() => document.querySelector(\".dpane[data-view='panoramic'] canvas\").toDataURL()"
    try:
        _open_panoramic(demo_server, page)
        page.click("#mode-toggle")
        _open_panoramic_view(page)
        page.wait_for_timeout(300)
        single = page.evaluate(pixels)
        page.click("#dental-toggle")
        page.wait_for_selector("#viewport[data-state='ready']")
        page.click("#layout-toggle")
        page.wait_for_selector("#layout-toggle[aria-pressed='true']")
        _open_panoramic_view(page)
        page.wait_for_timeout(300)
        assert page.evaluate(pixels) == single
    finally:
        context.close()


def test_the_panoramic_button_shows_when_the_dental_script_loads_late(demo_server, browser):
    """On a slow first visit the CBCT's image list could arrive before the dental module
    listened for it: the button never showed."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(30_000)

    def late(route) -> None:  # noqa: ANN001
        page.wait_for_timeout(1500)
        route.continue_()

    try:
        page.route(re.compile(r".*/viewer/dental-paint\.js.*"), late)
        _open_panoramic(demo_server, page)
        page.wait_for_selector("#dental-toggle", state="visible", timeout=10_000)
        _open_panoramic_view(page)
    finally:
        context.close()
