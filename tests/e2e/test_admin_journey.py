"""A practice admin's back office in Chromium: patient and practice lists, the access history,
timelines, the accounting of disclosures, a BAA with its document, the due-for-deletion list
and an alert acknowledged; screenshots at phone and desktop widths."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from tests.e2e.conftest import fresh_totp, run_manage

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PORTAL_E2E_SCREENSHOTS", tmp_path / "shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _shoot(page, phone, folder: Path, name: str) -> None:
    """Save the current page at desktop width and, in the same session, at 390x844."""
    page.screenshot(path=str(folder / f"{name}-desktop.png"), full_page=True)
    phone.goto(page.url)
    phone.screenshot(path=str(folder / f"{name}-phone.png"), full_page=True)


def _sign_in_admin(page, demo_server: dict) -> None:
    staff = next(s for s in demo_server["staff"] if s["username"] == "demo-admin")
    page.goto(demo_server["base_url"] + "/login/")
    page.fill("#id_username", staff["username"])
    page.fill("#id_password", demo_server["staff_password"])
    page.click("button[type=submit]")
    page.wait_for_selector("#id_token")
    page.fill("#id_token", fresh_totp(staff["otpauth_uri"]))
    page.click("text=Sign in")
    page.wait_for_selector("text=Find a patient or study")


def test_practice_admin_back_office(demo_server, desktop_page, tmp_path) -> None:
    page, base = desktop_page, demo_server["base_url"]
    folder = _shots(tmp_path)
    _sign_in_admin(page, demo_server)
    phone = page.context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})

    # The practice's settings are named in plain words (they read as column names).
    page.goto(base + "/practice/settings/")
    page.wait_for_selector("text=A new link lasts (days)")
    _shoot(page, phone, folder, "practice-settings")

    # The practice list answers (it was a server error) and shows only this practice.
    page.goto(base + "/admin/portal/practice/")
    assert page.locator("#result_list tbody tr").count() == 1
    assert "Smile Dental Studio" in page.locator("#result_list").inner_text()

    # The patient list is a recorded read of each patient on it.
    page.goto(base + "/admin/portal/patient/")
    assert "Maria Demo-Garcia" in page.locator("#result_list").inner_text()
    _shoot(page, phone, folder, "patients")
    page.goto(base + "/admin/audit/accessevent/?action__exact=admin_view")
    history = page.locator("#result_list").inner_text()
    assert "Maria Demo-Garcia" in history and "demo-admin" in history

    # Filter by dates, export what is shown; the export is itself recorded.
    page.fill("input[name=created_at__date__gte]", "2020-01-01")
    page.click("button:has-text('Filter by dates')")
    assert "created_at__date__gte=2020-01-01" in page.url
    _shoot(page, phone, folder, "access-history")
    with page.expect_download() as download:
        page.click("a.export-csv")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0][:3] == ["seq", "time", "action"] and len(rows) > 1
    assert all(r[2] == "Viewed in the back office" for r in rows[1:])
    page.goto(base + "/admin/audit/accessevent/?action__exact=export")
    assert "Exported from the back office" in page.locator("#result_list").inner_text()

    # The patient's timeline and accounting of disclosures (the demo link is one).
    page.goto(base + "/admin/portal/patient/")
    page.click("a:has-text('Maria Demo-Garcia')")
    page.click("a:has-text('Access timeline')")
    assert "Share issued" in page.locator("#timeline").inner_text()
    _shoot(page, phone, folder, "patient-timeline")
    page.click("a:has-text('Accounting of disclosures')")
    account = page.locator("#disclosures").inner_text()
    assert "Accounting of disclosures of your imaging records" in account
    assert "Secure link in the image portal" in account
    _shoot(page, phone, folder, "disclosures")

    # A BAA with its signed document, stored encrypted and opened from the admin.
    document = tmp_path / "signed-baa.pdf"
    document.write_bytes(PDF)
    page.goto(base + "/admin/portal/businessassociateagreement/add/")
    page.fill("#id_associate", "Cloud Backup Inc")
    page.fill("#id_signed_on", "2025-01-05")
    page.fill("#id_expires_on", "2026-12-31")
    page.set_input_files("#id_signed_document", document)
    assert "up to 50 MB" in page.locator("#id_signed_document_helptext").inner_text()
    _shoot(page, phone, folder, "baa-form")
    page.click("input[name=_continue]")
    page.wait_for_selector("text=encrypted in the vault")
    link = page.locator("a:has-text('Open signed-baa.pdf')").get_attribute("href")
    assert page.request.get(base + link).body() == PDF
    # Renewed: the new signed copy replaces it, and the first stays on file as an earlier version.
    renewed = tmp_path / "renewed-baa.pdf"
    renewed.write_bytes(PDF.replace(b"1 0 obj", b"2 0 obj"))
    page.fill("#id_expires_on", "2027-12-31")
    page.set_input_files("#id_signed_document", renewed)
    page.click("input[name=_continue]")
    page.wait_for_selector("text=Open renewed-baa.pdf")
    earlier = page.locator(".field-earlier_documents a:has-text('Open signed-baa.pdf')")
    assert page.request.get(base + earlier.get_attribute("href")).body() == PDF
    _shoot(page, phone, folder, "baa-versions")
    page.goto(base + "/admin/portal/businessassociateagreement/")
    assert page.locator(".baa-status").first.inner_text() in ("Active", "Ending within 60 days")
    _shoot(page, phone, folder, "baas")

    # A schedule keeps records at least a year. With the demo CBCT dated 2019 for a moment, a
    # one-year schedule makes it due: the daily run lists it, the admin approves it for the
    # next run (not run here: later journeys need the demo study, dated back afterwards).
    page.goto(base + "/admin/portal/retentionpolicy/add/")
    page.fill("#id_name", "Test schedule")
    page.fill("#id_retain_years", "0")
    page.click("input[name=_save]")
    assert "greater than or equal to 1" in page.locator(".errorlist").inner_text()
    page.fill("#id_retain_years", "1")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully")

    def redate(was: str, now: str) -> None:
        studies = f"Study.objects.filter(patient__patient_id='DEMO-0001', study_date='{was}')"
        code = f"from portal.models import Study; {studies}.update(study_date='{now}')"
        run_manage(demo_server, "shell", "-c", code)

    redate("2026-10-05", "2019-01-02")
    assert "awaiting approval" in run_manage(demo_server, "enforce_retention")
    redate("2019-01-02", "2026-10-05")
    page.goto(base + "/admin/portal/purge/")
    assert "Maria Demo-Garcia" in page.locator("#result_list").inner_text()
    _shoot(page, phone, folder, "due-for-deletion")
    page.locator("#action-toggle").check()
    page.select_option("select[name=action]", "approve")
    page.click("button[name=index]")
    page.wait_for_selector("text=approved for deletion")

    # A low threshold and two patients opened: the scan raises an alert, acknowledged.
    page.goto(base + "/admin/portal/compliancesettings/add/")
    page.fill("#id_patients_per_day", "1")
    page.click("input[name=_save]")
    page.goto(base + "/admin/portal/patient/")
    for name in ("Maria Demo-Garcia", "José Álvarez-Demo"):
        page.goto(base + "/admin/portal/patient/")
        page.click(f"a:has-text('{name}')")
    assert "opened many patients" in run_manage(demo_server, "scan_alerts")
    page.goto(base + "/admin/portal/alert/")
    page.click("#result_list tbody tr:has-text('opened many patients') a")
    page.fill("#id_note", "Admin reviewing records for the audit; expected.")
    _shoot(page, phone, folder, "alert")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was changed successfully")
    assert "OK:" in run_manage(demo_server, "verify_audit")
    phone.close()
