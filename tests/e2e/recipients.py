"""Steps recipients take in the journeys: verifying and issuing links to try."""

from __future__ import annotations

import json
from datetime import date

from tests.e2e.conftest import run_manage

LINK_PASSWORD = "amber-anchor-apple-arrow-12"


def fill_birth_date(page, iso: str) -> None:
    """Fill in the day, month (by its number) and year fields of the verification form."""
    born = date.fromisoformat(iso)
    page.fill("#id_birth_day", str(born.day))
    page.select_option("#id_birth_month", str(born.month))
    page.fill("#id_birth_year", str(born.year))


def verify_patient(page, demo_server: dict, path: str | None = None) -> None:
    """Open a patient link (the demo's by default) and verify up to the recipient's page."""
    base = demo_server["base_url"]
    page.goto(base + (path or demo_server["share_path"]))
    page.fill("#id_password", demo_server["share_password"] if path is None else LINK_PASSWORD)
    fill_birth_date(page, demo_server["share_birth_date"])
    page.click("form[action='/s/'] button[type=submit]")
    page.wait_for_url(base + "/s/home/")


def issue(demo_server: dict, state: str = "", **options) -> dict:
    """Issue a link to the demo CBCT with LINK_PASSWORD; `state` expired, locked or revoked.

    Returns the link's path (with its token) and code.
    """
    script = f"""
import json
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from portal.models import Study
from sharing.models import ShareLink
from sharing.services import issue_link
options = json.loads({json.dumps(json.dumps(options))})
issued = issue_link(
    study=Study.objects.get(code="{demo_server["study_code"]}"),
    created_by=User.objects.get(username="demo-frontdesk"),
    password="{LINK_PASSWORD}", **options,
)
now = timezone.now()
changes = {{"expired": {{"expires_at": now - timedelta(minutes=5)}},
            "locked": {{"locked_at": now, "failed_attempts": 5}},
            "revoked": {{"revoked_at": now}}}}.get("{state}", {{}})
ShareLink.objects.filter(pk=issued.share.pk).update(**changes)
print(json.dumps({{"path": issued.path, "code": str(issued.share.code)}}))
"""
    out = run_manage(demo_server, "shell", "-c", script)
    return json.loads(out.strip().splitlines()[-1])
