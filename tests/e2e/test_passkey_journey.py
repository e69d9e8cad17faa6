"""Passkeys in Chromium: a staff member adds one, then signs in with it instead of the code.

Chromium's virtual authenticator (DevTools WebAuthn domain) plays the phone or security key;
the ceremony, the portal's views and the WebAuthn verification are all real. Passkeys belong
to a domain name, so the portal is opened at localhost, not 127.0.0.1.
"""

from __future__ import annotations

from tests.e2e.conftest import fresh_totp


def _at_localhost(demo_server: dict) -> str:
    return demo_server["base_url"].replace("127.0.0.1", "localhost")


def _password_step(page, base: str, staff: dict, password: str) -> None:
    page.goto(base + "/login/")
    page.fill("#id_username", staff["username"])
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#id_token")


def test_a_member_adds_a_passkey_and_signs_in_with_it(demo_server, page) -> None:
    base = _at_localhost(demo_server)
    staff = next(s for s in demo_server["staff"] if s["role"] == "Hygienist")
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    authenticator = devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )["authenticatorId"]

    # Without a passkey the second step offers only the code.
    _password_step(page, base, staff, demo_server["staff_password"])
    assert page.locator("#passkey-verification-button").count() == 0
    page.fill("#id_token", fresh_totp(staff["otpauth_uri"]))
    page.click("text=Sign in")
    page.wait_for_selector("text=Find a patient or study")

    page.click("a:has-text('Your sign-in')")
    page.wait_for_selector("text=No passkey yet.")
    page.click("#passkey-register-button")
    page.wait_for_selector("ul.passkeys li")  # the page reloads with the new passkey listed
    stored = devtools.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(stored["credentials"]) == 1
    assert stored["credentials"][0]["rpId"] == "localhost"

    page.click("button:has-text('Sign out')")
    page.wait_for_selector("text=You are signed out")
    _password_step(page, base, staff, demo_server["staff_password"])
    page.click("#passkey-verification-button")
    page.wait_for_selector("text=Find a patient or study")
    used = devtools.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert used["credentials"][0]["signCount"] >= 1

    # Removing it brings back the code as the only second step.
    page.goto(base + "/account/")
    page.click("ul.passkeys button:has-text('Remove')")
    page.wait_for_selector("text=The passkey is removed.")
    assert page.locator("ul.passkeys li").count() == 0
