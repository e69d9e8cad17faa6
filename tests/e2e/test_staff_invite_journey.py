"""A practice admin adds a member; the member chooses a password from the emailed link
(followed from webmail, another site) and is then asked to set up an authenticator."""

from __future__ import annotations

import functools
import http.server
import re
import threading

from tests.e2e.conftest import fresh_totp

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

    (tmp_path / "inbox.html").write_text(f'<a id="open" href="{link}">Choose your password</a>')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    member = browser.new_context().new_page()
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as webmail:
        threading.Thread(target=webmail.serve_forever, daemon=True).start()
        try:
            member.goto(f"http://localhost:{webmail.server_address[1]}/inbox.html")
            member.click("#open")
            member.wait_for_selector("text=Choose your password")
            assert token not in member.url
            member.fill("#id_new_password1", NEW_PASSWORD)
            member.fill("#id_new_password2", NEW_PASSWORD)
            member.click("button:has-text('Save password')")
            member.wait_for_selector("text=Password saved")
        finally:
            webmail.shutdown()
    member.fill("#id_username", "e2e-newbie")
    member.fill("#id_password", NEW_PASSWORD)
    member.click("button[type=submit]")
    member.wait_for_selector("text=Authenticator")  # enrolment with a QR code comes next
    assert "/login/enroll/" in member.url
    assert token not in demo_server["server_log"].read_text()
