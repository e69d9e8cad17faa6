"""The front desk's list of links in Chromium: locked, withdrawn and expired links say why, a
patient asks for a new link, and the desk tells the links apart and answers the request.
Checked with axe-core; screenshots of the list at phone and desktop size."""

from __future__ import annotations

from tests.e2e import axe
from tests.e2e.people import DESKTOP, PHONE, shot
from tests.e2e.recipients import issue
from tests.e2e.test_staff_journey import _sign_in


def test_the_front_desk_tells_links_apart_and_answers_requests(demo_server, desktop, browser):
    page = desktop
    base = demo_server["base_url"]
    # Locked and withdrawn links say why; a patient whose link expired asks for a new one.
    others = [(issue(demo_server, state=state, recipient_kind="patient"), heading)
              for state, heading in [("locked", "This link is locked"),
                                     ("revoked", "This link has been withdrawn")]]  # fmt: skip
    expired = issue(demo_server, state="expired", recipient_kind="patient",
                    recipient_name="Maria (expired)")  # fmt: skip
    visitor = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    other = visitor.new_page()
    try:
        for link, heading in others:
            other.goto(base + link["path"])
            other.wait_for_selector(f"text={heading}")
            axe.check(other, heading)
        other.goto(base + expired["path"])
        other.wait_for_selector("text=This link has expired")
        axe.check(other, "expired")
        other.click("text=Ask for a new link")
        other.wait_for_selector("text=Your request is with the practice")
        axe.check(other, "request sent")
    finally:
        visitor.close()

    _sign_in(page, demo_server, "Front desk")
    page.goto(f"{base}/studies/{demo_server['study_code']}/")
    axe.check(page, "study")
    assert page.input_value("#id_recipient_email") == "maria.demo@example.org"  # on file
    page.check("input[name=recipient_kind][value=referrer]")
    assert page.input_value("#id_recipient_email") == ""
    page.fill("#id_expires_in_days", "400")
    page.click("button:has-text('Create link')")
    page.wait_for_selector("#share-errors")
    assert page.evaluate("document.activeElement.id") == "share-errors"
    summary = page.inner_text("#share-errors")
    assert "Recipient email" in summary and "Expires after" in summary
    assert page.locator("#share-errors").bounding_box()["y"] < DESKTOP["height"]  # in view
    axe.check(page, "share form with errors")
    page.fill("#id_recipient_email", "dr.ng@example.org")
    page.fill("#id_recipient_name", "Dr Ng (endodontist)")
    page.fill("#id_expires_in_days", "7")
    page.check("#id_notify_recipient")
    page.click("button:has-text('Create link')")
    page.wait_for_selector("text=This link is shown only now")
    code = page.get_attribute("#issued", "data-share")

    page.goto(base + "/shares/")
    page.wait_for_selector("text=Asked for a new link")
    axe.check(page, "links")
    requests = page.inner_text(".requests")
    assert "Maria (expired)" in requests and "Link expired" in requests
    row = page.locator(f"tr[data-share='{code}']")
    text = row.inner_text()
    shown_all = ("Dr Ng (endodontist)", "Referring clinician", "dr.ng@example.org",
                 "demo-frontdesk", "Whole study", "0 opens", "never opened", "Active")  # fmt: skip
    for shown in shown_all:
        assert shown in text, shown
    shot(page, "links-desktop")
    page.set_viewport_size(PHONE)
    shot(page, "links-phone")
    page.set_viewport_size(DESKTOP)

    assert row.locator("input[name=days]").get_attribute("max") == "30"
    row.locator("input[name=days]").fill("30")
    row.locator("button:has-text('Extend')").click()
    page.wait_for_selector("text=The link now expires on")

    row = page.locator(f"tr[data-share='{code}']")
    row.locator("summary:has-text('Revoke')").click()
    confirm = row.locator(".confirm-box")
    assert "no longer opens" in confirm.inner_text()
    axe.check(page, "revoke confirmation")
    confirm.locator("button:has-text('Revoke the link')").click()
    page.wait_for_selector("text=The link is revoked")
    assert "Revoked" in page.locator(f"tr[data-share='{code}']").inner_text()
