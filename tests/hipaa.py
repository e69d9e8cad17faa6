"""HIPAA's technical safeguards (45 CFR 164.312) and accounting of disclosures (164.528):
what the portal does for each, and the tests that prove it.

Tests carry `@pytest.mark.hipaa("164.312(b)", ...)`; tests owned elsewhere are marked here by
node id (LINKED), so renaming one shows up as a requirement without a test. `pytest
--hipaa=check` fails the run when a requirement has no passing test; `pytest --hipaa=write`
also writes docs/hipaa.md from the results.
"""

from __future__ import annotations

REQUIREMENTS = {
    "164.312(a)(1)": (
        "Access control",
        "One permission layer (portal/access.py) decides what a staff member (by practice and "
        "role) or a share link (by its scope) may see; another practice's object, or one outside "
        "the share, is a 404 and is audited as denied. The back office shows a practice admin "
        "only their own practice.",
    ),
    "164.312(a)(2)(i)": (
        "Unique user identification",
        "Every staff member has their own account, signs in with a password and an "
        "authenticator code, and is named in every access event; recipients are named by "
        "their share link's id.",
    ),
    "164.312(a)(2)(ii)": (
        "Emergency access procedure",
        "The portal's operators (superusers, with the same two-factor sign-in) can open any "
        "practice's records in the back office in an emergency; each such read is recorded "
        "like any other.",
    ),
    "164.312(a)(2)(iii)": (
        "Automatic logoff",
        "Staff sessions end after 15 idle minutes (or the practice's setting) and after 12 hours "
        "in all; recipient sessions after 10 idle minutes and at the link's expiry.",
    ),
    "164.312(a)(2)(iv)": (
        "Encryption and decryption",
        "Every stored object is encrypted with its own AES-256-GCM data key (STREAM segments), "
        "wrapped by a key kept outside the database; crypto-shredding destroys the key.",
    ),
    "164.312(b)": (
        "Audit controls",
        "Every read of patient data, sign-in, link action, denial and back-office list writes "
        "one access event in the same transaction (or nothing is served). The history is "
        "append-only (PostgreSQL triggers), chained by HMAC with a key outside the database, "
        "checked daily by `manage.py verify_audit` against its head and signed checkpoints in "
        "the object store; the back office filters, exports (audited) and shows timelines.",
    ),
    "164.312(c)(1)": (
        "Integrity",
        "Stored objects are authenticated encryption: a flipped bit, truncation or swapped "
        "object fails loudly. The access history detects an altered, deleted, inserted or "
        "truncated event.",
    ),
    "164.312(c)(2)": (
        "Mechanism to authenticate electronic PHI",
        "Each segment's GCM tag and each object's SHA-256 are checked on every read "
        "(`manage.py verify_storage` checks them all); access events by their HMAC chain.",
    ),
    "164.312(d)": (
        "Person or entity authentication",
        "Staff: password plus TOTP (or a passkey), throttled. Patients: link password and "
        "date of birth; referrers: link password and a one-time code emailed to them.",
    ),
    "164.312(e)(1)": (
        "Transmission security",
        "Production runs behind TLS only: HTTPS redirect, HSTS, Secure cookies, and "
        "`check --deploy` must be clean before it starts.",
    ),
    "164.312(e)(2)(i)": (
        "Integrity controls (transmission)",
        "Responses with patient data are never cached (no-store) and carry a strict CSP; a "
        "download that meets a decryption error aborts, and Content-Length lets the client "
        "see it.",
    ),
    "164.312(e)(2)(ii)": (
        "Encryption (transmission)",
        "TLS everywhere in production (HSTS one year, SSL redirect, Secure cookies with the "
        "__Host- prefix).",
    ),
    "164.528": (
        "Accounting of disclosures",
        "Per patient, for up to six years: every share link (to whom, why, when, what, who "
        "issued it) with each use and download by its recipient, and disclosures recorded as "
        "made outside the portal; a printable page and CSV in the back office.",
    ),
}

# Tests that prove a requirement but live in files owned by other parts of the portal.
LINKED = {
    "tests/test_url_matrix.py::MatrixTestCase::test_each_persona_gets_what_its_role_and_practice_allow": (
        "164.312(a)(1)",
    ),
    "tests/portal/test_admin_scope.py::AdminScopeTestCase::test_another_practices_patient_is_not_found": (
        "164.312(a)(1)",
    ),
    "tests/portal/test_login.py::LoginTestCase::test_it_signs_in_with_a_totp_code": (
        "164.312(a)(2)(i)",
        "164.312(d)",
    ),
    "tests/portal/test_login.py::LoginTestCase::test_it_refuses_a_wrong_code": ("164.312(d)",),
    "tests/sharing/test_verify_recipient.py::VerifyRecipientTestCase::test_it_verifies_password_and_birth_date": (
        "164.312(d)",
    ),
    "tests/portal/test_sessions.py::StaffSessionTimeoutTestCase::test_it_signs_out_after_idle_minutes": (
        "164.312(a)(2)(iii)",
    ),
    "tests/portal/test_vault.py::LocalVaultTestCase::test_it_stores_no_plaintext": (
        "164.312(a)(2)(iv)",
    ),
    "tests/portal/test_vault.py::LocalVaultTestCase::test_it_needs_the_key": ("164.312(a)(2)(iv)",),
    "tests/portal/test_vault.py::LocalVaultTestCase::test_it_detects_a_flipped_bit_in_storage": (
        "164.312(c)(1)",
        "164.312(c)(2)",
    ),
    "tests/portal/test_vault.py::LocalVaultTestCase::test_verify_storage_passes_on_intact_objects": (
        "164.312(c)(2)",
    ),
    "tests/portal/test_settings.py::test_check_deploy_is_clean_in_production": (
        "164.312(e)(1)",
        "164.312(e)(2)(ii)",
    ),
    "tests/sharing/test_headers.py::RecipientHeadersTestCase::test_every_recipient_response": (
        "164.312(e)(2)(i)",
    ),
}
