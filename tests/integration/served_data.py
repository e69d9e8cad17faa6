"""Create a scenario's data in a served portal's database and print what the test needs.

Run by tests.integration.served.Served.setup as
`python -m tests.integration.served_data SCENARIO '{"option": ...}'` with the served
environment; the last line printed is JSON.
"""

from __future__ import annotations

import json
import sys
from datetime import date


def practice_links(
    links: int = 3, max_downloads: int | None = None, slug: str = "smile", big_file_mb: int = 0
) -> dict:
    """One practice, one patient and study per link, a patient link to each.

    big_file_mb adds a PDF report of that size to each study (a download worth cutting off).
    """
    from portal.models import Patient, Practice, Role
    from sharing.services import issue_link
    from tests.base import make_ct_study, make_staff

    practice = Practice.objects.create(slug=slug, name=f"{slug.title()} Dental")
    staff = make_staff(f"{slug}-admin", practice, Role.ADMIN)
    issued = []
    for i in range(links):
        patient = Patient.objects.create(
            practice=practice, patient_id=f"P-{i}", name="Pat Example", birth_date=date(1980, 5, 17)
        )
        study = make_ct_study(patient, 1, uid_root=f"1.2.826.0.1.3680043.8.498.7{i}")
        if big_file_mb:
            _big_report(study, big_file_mb)
        link = issue_link(
            study=study, created_by=staff, recipient_kind="patient", max_downloads=max_downloads
        )
        series = study.series.get()
        instance = series.instances.get()
        issued.append(
            {
                "study": str(study.code),
                "series": str(series.code),
                "token": link.token,
                "password": link.password,
                "birth_date": "1980-05-17",
                "code": str(link.share.code),
                "instance": str(instance.code),
                "size": instance.blob.plain_size,
                "frames": (
                    f"/dicomweb/studies/{study.study_uid}/series/{series.series_uid}"
                    f"/instances/{instance.sop_instance_uid}/frames/1"
                ),
            }
        )
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user=staff)
    admin = {"username": staff.username, "password": "correct-horse-42"}
    admin["totp_key"] = device.bin_key.hex()
    return {"links": issued, "admin": admin}


def staff(username: str = "dora", email: str = "dora@example.org") -> dict:
    """A practice with one clinician whose password and authenticator the test knows."""
    from django.contrib.auth.models import User
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from portal.models import Practice, Role, StaffMember

    practice, _ = Practice.objects.get_or_create(slug="staffed", defaults={"name": "Staffed"})
    user = User.objects.create_user(username, email, "correct-horse-42")
    StaffMember.objects.create(user=user, practice=practice, role=Role.CLINICIAN)
    device = TOTPDevice.objects.create(user=user, name="default", confirmed=True)
    return {"username": username, "password": "correct-horse-42", "totp_key": device.bin_key.hex()}


def _big_report(study, megabytes: int) -> None:  # noqa: ANN001
    import io
    import os

    from portal import vault
    from portal.models import Attachment

    data = b"%PDF-1.4\n" + os.urandom(megabytes * 2**20)
    Attachment.objects.create(
        practice=study.practice, patient=study.patient, study=study, kind=Attachment.Kind.PDF,
        content_type="application/pdf", title="Large report", original_name="report.pdf",
        blob=vault.store(io.BytesIO(data)),
    )  # fmt: skip


def received_files(slug: str = "received", files: int = 3) -> dict:
    """A practice admin and an upload link through which another practice sent a CBCT."""
    import io
    import tempfile
    from pathlib import Path

    from portal.demo.phantom import PhantomGeometry, write_cbct
    from portal.models import Patient, Practice, Role
    from sharing.uploads import intake
    from sharing.uploads.services import issue_upload_link
    from tests.base import make_staff

    practice = Practice.objects.create(slug=slug, name=f"{slug.title()} Dental")
    staff = make_staff(f"{slug}-admin", practice, Role.ADMIN)
    patient = Patient.objects.create(
        practice=practice, patient_id="P-1", name="Pat Example", birth_date=date(1980, 5, 17)
    )
    link = issue_upload_link(patient=patient, created_by=staff, sender_name="Dr Other").link
    scans = write_cbct(
        Path(tempfile.mkdtemp(prefix="served-received-")),
        PhantomGeometry(slices=files, rows=32, columns=32, pixel_spacing_mm=2.0, marker_slice=0),
        patient_name="Example^Pat",
        patient_id="OTHER-77",
        birth_date=date(1980, 5, 17),
        study_date=date(2025, 11, 3),
        description="CBCT from Dr Other",
    )
    intake.receive(link, [(f.name, io.BytesIO(f.read_bytes())) for f in scans])
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user=staff)
    admin = {"username": staff.username, "password": "correct-horse-42"}
    admin["totp_key"] = device.bin_key.hex()
    return {"link": str(link.code), "admin": admin}


def upload_link(slug: str, max_bytes: int) -> dict:
    """An upload link with room for max_bytes, and what its sender knows to open it."""
    from portal.models import Patient, Practice, Role
    from sharing.uploads.services import issue_upload_link
    from tests.base import make_staff

    practice = Practice.objects.create(slug=slug, name=f"{slug.title()} Dental")
    staff = make_staff(f"{slug}-admin", practice, Role.ADMIN)
    patient = Patient.objects.create(
        practice=practice, patient_id="P-1", name="Pat Example", birth_date=date(1980, 5, 17)
    )
    password = "amber-anchor-apple-arrow-12"
    issued = issue_upload_link(
        patient=patient, created_by=staff, password=password, max_bytes=max_bytes
    )
    return {"code": str(issued.link.code), "path": issued.path, "password": password,
            "birth_date": "1980-05-17"}  # fmt: skip


def upload_link_state(code: str) -> dict:
    """An upload link's charge, what it kept, and vault files no row names."""
    from datetime import timedelta

    from portal.vault import housekeeping
    from sharing.models import ReceivedFile, UploadLink

    link = UploadLink.objects.get(code=code)
    files = ReceivedFile.objects.filter(link=link)
    return {
        "charged": link.received_bytes,
        "kept": sorted(f.size for f in files.filter(state=ReceivedFile.State.PENDING)),
        "refused": [f.reason for f in files.filter(state=ReceivedFile.State.REFUSED)],
        "orphans": len(housekeeping.orphans(older_than=timedelta(0))),
    }


def received_state(link: str) -> dict:
    """What became of an upload link's files: their states, what was filed, what is readable."""
    from audit.models import AccessEvent, Action
    from portal import vault
    from portal.models import Instance
    from sharing.models import ReceivedFile, UploadLink

    upload = UploadLink.objects.get(code=link)
    files = list(ReceivedFile.objects.filter(link=upload))
    instances = Instance.objects.filter(series__study__patient=upload.patient)
    return {
        "states": sorted(f.state for f in files),
        "blobs_kept": sum(1 for f in files if f.blob_id is not None),
        "instances": instances.count(),
        "readable": sum(1 for i in instances if vault.read_bytes(i.blob)[128:132] == b"DICM"),
        "declines_recorded": AccessEvent.objects.filter(
            action=Action.UPLOAD, detail__upload_link=link, detail__has_key="declined"
        ).count(),
    }


def study_links(study: str) -> int:
    """How many share links a study has."""
    from sharing.models import ShareLink

    return ShareLink.objects.filter(study__code=study).count()


def link_tokens(code: str) -> int:
    """How many software tokens a share link has."""
    from sharing.models import SoftwareToken

    return SoftwareToken.objects.filter(share__code=code).count()


def download_events(code: str) -> dict:
    """Count a link's download records that ended complete and incomplete."""
    from audit.models import AccessEvent, Action

    ends = [
        e.detail
        for e in AccessEvent.objects.filter(share_code=code, action=Action.DOWNLOAD)
        if e.detail.get("phase") == "end"
    ]
    return {
        "complete": sum(1 for d in ends if d.get("complete")),
        "incomplete": sum(1 for d in ends if not d.get("complete")),
    }


def link_counts(codes: list[str]) -> dict:
    """Return each link's counters and its audit events by action and outcome."""
    from django.db.models import Count

    from audit.models import AccessEvent
    from sharing.models import ShareLink, VerificationFailure

    counts = {}
    for share in ShareLink.objects.filter(code__in=codes):
        events = (
            AccessEvent.objects.filter(share_code=share.code)
            .values_list("action", "outcome")
            .annotate(n=Count("id"))
        )
        counts[str(share.code)] = {
            "failed_attempts": share.failed_attempts,
            "open_count": share.open_count,
            "download_count": share.download_count,
            "failures_recorded": VerificationFailure.objects.filter(share=share).count(),
            "events": {f"{action}:{outcome}": n for action, outcome, n in events},
        }
    return counts


SCENARIOS = {
    "practice_links": practice_links,
    "staff": staff,
    "link_counts": link_counts,
    "download_events": download_events,
    "received_files": received_files,
    "received_state": received_state,
    "upload_link": upload_link,
    "upload_link_state": upload_link_state,
    "study_links": study_links,
    "link_tokens": link_tokens,
}


def main() -> None:
    import django

    django.setup()
    scenario, options = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else "{}")
    print(json.dumps(SCENARIOS[scenario](**options)))


if __name__ == "__main__":
    main()
