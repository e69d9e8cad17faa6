"""The demo's share link, opened in a real browser, lands on the password page."""

from __future__ import annotations

from tests.e2e.conftest import webmail
from tests.e2e.recipients import fill_birth_date


def test_demo_link_shows_password_page(demo_server, page) -> None:
    """Opening the printed link drops the token from the address bar and asks for a password."""
    token = demo_server["share_path"].rsplit("/", 1)[1]
    response = page.goto(demo_server["base_url"] + demo_server["share_path"])
    assert response is not None and response.ok
    assert token not in page.url
    assert page.locator("input[type=password]").is_visible()
    assert token not in demo_server["server_log"].read_text()


def test_link_clicked_in_webmail_reaches_the_password_page(demo_server, page, tmp_path) -> None:
    """A link followed from another site (webmail) still lands in a working share session.

    The session cookie is SameSite=Strict, so the browser withholds it on the cross-site
    redirect; the portal must still show the password page and accept the password.
    """
    base = demo_server["base_url"]
    with webmail(tmp_path, base + demo_server["share_path"], "Your scans") as inbox:
        page.goto(inbox)
        page.click("#open")
        page.wait_for_selector("input[type=password]")
        assert page.url == base + "/s/"
        page.fill("#id_password", demo_server["share_password"])
        fill_birth_date(page, demo_server["share_birth_date"])
        page.click("form[action='/s/'] button[type=submit]")
        page.wait_for_url(base + "/s/home/")
        page.wait_for_selector("text=View the images")
