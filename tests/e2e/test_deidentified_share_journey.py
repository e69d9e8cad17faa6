"""A teacher opens a link to a de-identified copy of the demo CBCT, on a phone and a desktop.

Nothing on the pages, in the viewer or in the DICOM tags panel names the patient; the pages
say what the recipient has. Screenshots go to docs/screenshots/deidentified-share-*.png.
"""

from __future__ import annotations

import re

from tests.e2e import axe
from tests.e2e.conftest import ROOT
from tests.e2e.recipients import LINK_PASSWORD, issue
from tests.e2e.test_people_journeys import _last_code

SHOTS = ROOT / "docs" / "screenshots"
# The demo CBCT's patient, as the portal and the files name them.
# A number counts only standing alone: the copy's new random UIDs may hold "1984" by chance.
NEEDLES = tuple(
    re.compile(rf"(?<![0-9]){re.escape(n)}(?![0-9])")
    for n in ("Maria", "Demo-Garcia", "DEMO-0001", "1984", "19840712")
)


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"deidentified-share-{name}.png"), full_page=True)


def _assert_clean(text: str, where: str) -> None:
    for needle in NEEDLES:
        found = needle.search(text)
        assert found is None, f"{found.group()} on {where}" if found else ""


def test_a_deidentified_link_shows_no_one(demo_server, page, browser) -> None:
    base = demo_server["base_url"]
    link = issue(
        demo_server,
        recipient_kind="referrer",
        recipient_email="teacher@example.org",
        recipient_name="Dr Teach (teaching)",
        deidentified=True,
    )
    page.goto(base + link["path"])
    page.click("text=Email me a code")
    page.wait_for_selector("text=A code is on its way")
    _assert_clean(page.content(), "verify page")
    page.fill("#id_password", LINK_PASSWORD)
    page.fill("#id_code", _last_code(demo_server["mail_dir"], "teacher@example.org"))
    page.click("form[action='/s/'] button[type=submit]")
    page.wait_for_url(base + "/s/home/")
    assert page.is_visible("text=De-identified images")
    assert "De-identified copy" in page.inner_text("#deid-note")
    _assert_clean(page.content(), "recipient home")
    axe.check(page, "de-identified recipient home")
    _shot(page, "phone")

    desktop = browser.new_context(
        viewport={"width": 1440, "height": 900}, storage_state=page.context.storage_state()
    )
    try:
        view = desktop.new_page()
        view.set_default_timeout(30_000)
        view.goto(base + "/s/home/")
        _assert_clean(view.content(), "recipient home (desktop)")
        _shot(view, "desktop")
        view.click("text=View the images")
        view.wait_for_selector("#viewport[data-state='ready'][data-plane='axial']")
        view.click("#tags-load")
        view.wait_for_selector("#tags-table:not([hidden])")
        tags = view.inner_text("#tags-table")
        assert "Patient Identity Removed" in tags and "YES" in tags
        _assert_clean(tags, "tags panel")
        _assert_clean(view.content(), "viewer")
        assert "De-identified copy" in view.inner_text("#meta-patient")
        view.screenshot(path=str(SHOTS / "deidentified-share-viewer-desktop.png"))
    finally:
        desktop.close()


def test_staff_issue_a_deidentified_link_and_see_what_it_covers(demo_server, page) -> None:
    from tests.e2e.test_staff_journey import _sign_in

    _sign_in(page, demo_server, "Front desk")
    page.goto(demo_server["base_url"] + f"/studies/{demo_server['study_code']}/")
    page.wait_for_selector("text=Share this study")
    page.check("#id_deidentified")  # picks the clinician or teacher recipient by itself
    assert page.is_checked("input[name=recipient_kind][value=referrer]")
    page.fill("#id_recipient_email", "teacher@example.org")
    page.fill("#id_recipient_name", "Dr Teach (teaching)")
    page.locator("fieldset.deid").screenshot(path=str(SHOTS / "deidentified-share-form-phone.png"))
    page.click("button:has-text('Create link')")
    page.wait_for_selector("text=This link is shown only now")
    report = page.inner_text("#deid-report")
    assert "De-identified copy" in report and "300 of 300 files" in report
    axe.check(page, "de-identified link issued")
    _shot(page, "issued-phone")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(demo_server["base_url"] + f"/studies/{demo_server['study_code']}/")
    row = page.locator("tr.share-row", has_text="Dr Teach (teaching)").first
    assert "De-identified copy" in row.inner_text()
    row.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "deidentified-share-links-desktop.png"))
