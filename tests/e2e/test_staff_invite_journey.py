"""A practice admin adds a member; the member chooses a password from the emailed link
(followed from webmail, another site) and is then asked to set up an authenticator."""

from __future__ import annotations

import re

from tests.e2e.conftest import fresh_totp, webmail

NEW_PASSWORD = "canine-harbour-47-lantern"


def test_admin_invites_a_member_who_chooses_a_password(demo_server, page, browser, tmp_path):
    base = demo_server["base_url"]
    admin = next(s for s in demo_server["staff"] if s["role"] == "Practice admin")
    page.goto(base + "/login/")
    page.fill("#id_username", admin["username"])
    page.fill("#id_password", demo_server["staff_password"])
    page.click("button[type=submit]")
    page.fill("#id_token", fresh_totp(admin["otpauth_uri"]))
    page.click("text=Sign in")
    page.click("a:has-text('Staff')")
    page.click("a:has-text('Add a staff member')")
    page.fill("#id_username", "e2e-newbie")
    page.fill("#id_full_name", "Nia Newbie")
    page.fill("#id_email", "nia@example.org")
    page.select_option("#id_role", "hygienist")
    page.click("button:has-text('Add and send the invitation')")
    page.wait_for_selector("text=A link to choose a password went to nia@example.org")
    assert "e2e-newbie" in page.locator("table").inner_text()

    mails = [p.read_text() for p in demo_server["mail_dir"].glob("*.log")]
    invite = next(m for m in mails if "nia@example.org" in m and "Choose your password" in m)
    link = re.search(r"(http://\S+/login/set-password/\S+/)", invite).group(1)
    token = link.rstrip("/").rsplit("/", 1)[1]

    member = browser.new_context().new_page()
    with webmail(tmp_path, link, "Choose your password") as inbox:
        member.goto(inbox)
        member.click("#open")
        member.wait_for_selector("text=Choose your password")
        assert token not in member.url
        member.fill("#id_new_password1", NEW_PASSWORD)
        member.fill("#id_new_password2", NEW_PASSWORD)
        member.click("button:has-text('Save password')")
        member.wait_for_selector("text=Password saved")
    member.fill("#id_username", "demo.e2e-newbie")
    member.fill("#id_password", NEW_PASSWORD)
    member.click("button[type=submit]")
    member.wait_for_selector("text=Authenticator")  # enrolment with a QR code comes next
    assert "/login/enroll/" in member.url
    assert token not in demo_server["server_log"].read_text()
