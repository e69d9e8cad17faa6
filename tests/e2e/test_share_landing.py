"""The demo's share link, opened in a real browser, lands on the password page."""

from __future__ import annotations


def test_demo_link_shows_password_page(demo_server, page) -> None:
    """Opening the printed link drops the token from the address bar and asks for a password."""
    token = demo_server["share_path"].rsplit("/", 1)[1]
    response = page.goto(demo_server["base_url"] + demo_server["share_path"])
    assert response is not None and response.ok
    assert token not in page.url
    assert page.locator("input[type=password]").is_visible()
    assert token not in demo_server["server_log"].read_text()
