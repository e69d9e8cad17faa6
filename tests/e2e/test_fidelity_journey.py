"""In Chromium: files that name no patient wait in the queue and are attached; a report, an
overlay image and key images show in the viewer. Screenshots at phone and desktop width."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.dicom_samples import ROOT, identify, sample, to_bytes
from tests.e2e.conftest import run_manage
from tests.e2e.test_staff_journey import _sign_in
from tests.portal.ingest_helpers import png_bytes

PATIENT = "DEMO-0002"  # the demo's sample patient


def _shot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    keep = os.environ.get("PORTAL_E2E_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "loose photo.png").write_bytes(png_bytes((64, 48)))
    for n, name in enumerate(["test-SR.dcm", "examples_overlay.dcm"], start=1):
        ds = identify(sample(name), n, patient_id=PATIENT, study="61")
        (folder / name).write_bytes(to_bytes(ds))
    anonymous = identify(sample("CT_small.dcm"), 3, patient_id="", study="62")
    (folder / "no patient id.dcm").write_bytes(to_bytes(anonymous))
    return folder


def test_a_folder_is_sorted_in_one_pass_and_shown(demo_server, page, desktop_page, tmp_path):
    out = run_manage(demo_server, "ingest", str(_folder(tmp_path)))
    assert "needs a patient  no patient id.dcm: the file has no Patient ID" in out
    assert "stored  loose photo.png: attached to patient DEMO-0002" in out

    for p, width in ((page, "phone"), (desktop_page, "desktop")):
        _sign_in(p, demo_server, "Clinician")
        p.goto(demo_server["base_url"] + "/pending/")
        p.wait_for_selector("text=no patient id.dcm")
        _shot(p, tmp_path, f"pending-{width}")

    desktop_page.fill("input[name=patient_id]", PATIENT)
    desktop_page.click("button:has-text('Attach')")
    desktop_page.wait_for_selector("text=The file is attached to that patient's record.")
    _shot(desktop_page, tmp_path, "pending-attached-desktop")

    code = run_manage(
        demo_server,
        "shell",
        "-c",
        f"from portal.models import Study;print(Study.objects.get(study_uid='{ROOT}.61').code)",
    ).split()[-1]
    for p, width in ((page, "phone"), (desktop_page, "desktop")):
        p.goto(f"{demo_server['base_url']}/viewer/studies/{code}/")
        p.wait_for_selector("#viewer")
        if p.locator("#drawer-open").is_visible():  # on a phone the list is in the drawer
            p.click("#drawer-open")
        p.locator("button[data-kind=series]:has-text('MR')").click()
        p.wait_for_selector("#viewport[data-state=ready]")
        _shot(p, tmp_path, f"viewer-overlay-{width}")
    toggle = desktop_page.locator("#overlays")
    assert toggle.is_visible()
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "false"
    _shot(desktop_page, tmp_path, "viewer-overlay-hidden-desktop")
    desktop_page.locator("button[data-kind=series]:has-text('SR')").click()
    frame = desktop_page.frame_locator("#pdf-frame")
    frame.locator("text=Diagnosis").first.wait_for()
    _shot(desktop_page, tmp_path, "viewer-report-desktop")
