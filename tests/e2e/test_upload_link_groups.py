"""A sender's files go to the practice a group at a time: a dropped connection costs a group.

A CD's worth of files in one request was lost whole when the connection dropped at 90 %.
Here the page's group size is lowered so that three small files make three requests; the
browser's network drops one of them, then drops everything for a while: what got through
stays received, and sending again sends only the rest.
"""

from __future__ import annotations

import io
import json
import time

import pydicom
from pydicom.data import get_testdata_file

from tests.e2e.conftest import ROOT, run_manage
from tests.e2e.recipients import fill_birth_date

SHOTS = ROOT / "docs" / "screenshots"
ISSUE = """
import json
from django.contrib.auth.models import User
from portal.models import Patient
from sharing.uploads.services import issue_upload_link
patient = Patient.objects.get(patient_id="DEMO-0001")
issued = issue_upload_link(patient=patient, created_by=User.objects.get(username="demo-admin"),
                           sender_name="Dr Groups")
print(json.dumps({"path": issued.path, "password": issued.password,
                  "born": patient.birth_date.isoformat()}))
"""


def _scan(n: int) -> dict:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    uid = f"1.2.826.0.1.3680043.8.498.9{int(time.time())}"
    ds.PatientID = "GROUPS-1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = f"{uid}.1", f"{uid}.1.1"
    ds.SOPInstanceUID = f"{uid}.1.1.{n}"
    ds.InstanceNumber = n
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return {"name": f"IM{n:04d}.dcm", "mimeType": "application/dicom", "buffer": buf.getvalue()}


def _revoke(demo_server, code: str) -> None:  # noqa: ANN001
    """Staff revoke the upload link (as its row says: revoked now)."""
    run_manage(
        demo_server, "shell", "-c",
        "from django.utils import timezone; from sharing.models import UploadLink; "
        "from sharing.services import hash_token; "
        f"UploadLink.objects.filter(token_hash=hash_token({code!r}))"
        ".update(revoked_at=timezone.now())",
    )  # fmt: skip


def _open_link(demo_server, page) -> dict:  # noqa: ANN001
    """Issue an upload link, open it as its sender, and send one file per request."""
    link = json.loads(run_manage(demo_server, "shell", "-c", ISSUE).strip().splitlines()[-1])
    page.goto(demo_server["base_url"] + link["path"])
    page.fill("#id_password", link["password"])
    fill_birth_date(page, link["born"])
    page.click("button:has-text('Continue')")
    page.wait_for_selector("text=Each file may be up to")
    # One file per request (the server's limits are its own).
    page.evaluate("() => { document.getElementById('send-form').dataset.groupBytes = '1'; }")
    return link


def test_a_dropped_group_is_sent_again_and_a_stopped_send_resumes(demo_server, page) -> None:
    _open_link(demo_server, page)
    posts: list[str] = []
    drops = {"left": 1}

    def network(route) -> None:  # noqa: ANN001
        posts.append(route.request.method)
        if drops["left"] > 0 and len(posts) == 2:
            drops["left"] -= 1
            route.abort("connectionreset")  # the second request's first try
        elif drops.get("all"):
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route("**/u/files/", network)
    page.set_input_files("#id_files", files=[_scan(n) for n in (1, 2, 3)])
    page.click("button:has-text('Send')")
    page.wait_for_selector("#send-summary:has-text('3 files received')", timeout=30_000)
    assert len(posts) == 4  # three groups, one sent twice
    assert "IM0003.dcm" in page.text_content("body")  # "Sent so far" lists them

    # Now the connection goes for good after the first of two new files.
    page.evaluate("() => { document.getElementById('send-form').dataset.groupBytes = '1'; }")
    posts.clear()

    def fails_after_one(route) -> None:  # noqa: ANN001
        posts.append(route.request.method)
        if len(posts) > 1 and drops.get("all", True):
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.unroute("**/u/files/")
    page.route("**/u/files/", fails_after_one)
    page.set_input_files("#id_files", files=[_scan(n) for n in (4, 5)])
    page.click("button:has-text('Send')")
    page.wait_for_selector("#send-problem:has-text('1 of 2 files got through')", timeout=30_000)
    assert len(posts) == 5  # the first, then four tries of the second
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "upload-send-stopped-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.screenshot(path=str(SHOTS / "upload-send-stopped-desktop.png"), full_page=True)
    drops["all"] = False  # the connection is back
    posts.clear()
    page.click("button:has-text('Send')")
    page.wait_for_selector("#send-summary:has-text('1 file received')", timeout=30_000)
    assert len(posts) == 1  # only the file that had not got through
    states = run_manage(
        demo_server, "shell", "-c",
        "from sharing.models import ReceivedFile; "
        "print(sorted(ReceivedFile.objects.filter(link__sender_name='Dr Groups')"
        ".values_list('name', 'state')))",
    )  # fmt: skip
    for n in (1, 2, 3, 4, 5):
        assert f"('IM000{n}.dcm', 'pending')" in states, states


def test_a_link_revoked_mid_send_keeps_what_got_through_and_says_so(demo_server, page) -> None:
    link = _open_link(demo_server, page)
    posts: list[str] = []
    code = link["path"].rstrip("/").rsplit("/", 1)[-1]

    def revoke_before_the_second(route) -> None:  # noqa: ANN001
        posts.append(route.request.method)
        if len(posts) == 2:  # staff revoke the link while the second file is on its way
            _revoke(demo_server, code)
        route.continue_()

    page.route("**/u/files/", revoke_before_the_second)
    page.set_input_files("#id_files", files=[_scan(n) for n in (11, 12, 13)])
    page.click("button:has-text('Send')")
    page.wait_for_selector(
        "#send-problem:has-text('1 of 3 files got through; then the portal said: "
        "This link has been withdrawn')"
    )
    assert len(posts) == 2  # a refusal is not sent again


def test_a_big_send_to_a_closed_link_says_why_not_that_the_connection_failed(
    demo_server, page
) -> None:
    """The portal refuses a closed link's files before reading them; the sender must hear
    that the link was withdrawn, not that there was nothing to show or a connection failed."""
    link = _open_link(demo_server, page)
    code = link["path"].rstrip("/").rsplit("/", 1)[-1]
    _revoke(demo_server, code)
    big = {"name": "CBCT.zip", "mimeType": "application/zip", "buffer": b"\0" * (24 * 2**20)}
    page.set_input_files("#id_files", files=[big])
    page.click("button:has-text('Send')")
    page.wait_for_selector("h1:has-text('This link has been withdrawn')", timeout=40_000)
    assert "did not get through" not in page.text_content("body")
