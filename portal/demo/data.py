"""Demo data for a laptop: a practice, one staff user per role, patients, a CBCT and a share."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

import pydicom
from django.contrib.auth.models import User
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice
from pydicom.data import get_testdata_file

from portal.demo import phantom
from portal.ingest import ingest_files
from portal.models import DicomNode, DicomPeer, Patient, Practice, Role, StaffMember, Study
from sharing.models import ShareLink
from sharing.services import issue_link

PRACTICE_SLUG = "demo"
CBCT_PATIENT = {"patient_id": "DEMO-0001", "name": "Maria Demo-Garcia", "birth": date(1984, 7, 12)}
SAMPLE_PATIENT = {"patient_id": "DEMO-0002", "name": "José Álvarez-Demo", "birth": date(1971, 2, 3)}
SAMPLE_FILES = ("CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm")
STAFF = (
    ("demo-admin", Role.ADMIN),
    ("demo-clinician", Role.CLINICIAN),
    ("demo-hygienist", Role.HYGIENIST),
    ("demo-frontdesk", Role.FRONT_DESK),
)
DEMO_LINK_NAME = "Demo share"
# The demo practice's DICOM receiver and the one device allowed to send to it, so that
# `manage.py dicom_receiver` and `echoscu -aet CBCT1 -aec SMILEPACS 127.0.0.1 11112` work.
DEMO_CALLED_AE = "SMILEPACS"
DEMO_DEVICE = {"name": "Demo CBCT unit", "ae_title": "CBCT1", "address": "127.0.0.1"}


@dataclass
class StaffLogin:
    username: str
    role: str
    otpauth_uri: str


@dataclass
class DemoResult:
    practice: Practice
    cbct_study: Study
    password: str = ""
    staff: list[StaffLogin] = field(default_factory=list)
    share_path: str = ""
    share_password: str = ""
    share_birth_date: str = ""
    ingest_lines: list[str] = field(default_factory=list)
    dicom_node: DicomNode | None = None
    dicom_device: DicomPeer | None = None


def _dicom_bytes(ds: pydicom.Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _cbct_files(slices: int) -> Iterator[tuple[str, io.BytesIO]]:
    """Yield the generated CBCT slice by slice, in memory only."""
    datasets = phantom.iter_cbct_datasets(
        phantom.PhantomGeometry(slices=slices),
        patient_name="Demo-Garcia^Maria",
        patient_id=CBCT_PATIENT["patient_id"],
        birth_date=CBCT_PATIENT["birth"],
        study_date=date(2026, 10, 5),
        description="CBCT maxilla and mandible",
    )
    for i, ds in enumerate(datasets, start=1):
        yield f"cbct/IM{i:04d}.dcm", io.BytesIO(_dicom_bytes(ds))


def _sample_files() -> Iterator[tuple[str, io.BytesIO]]:
    """Yield pydicom's sample files re-labelled as the second demo patient."""
    for name in SAMPLE_FILES:
        ds = pydicom.dcmread(get_testdata_file(name))
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName = "Álvarez-Demo^José"
        ds.PatientID = SAMPLE_PATIENT["patient_id"]
        ds.PatientBirthDate = SAMPLE_PATIENT["birth"].strftime("%Y%m%d")
        yield f"samples/{name}", io.BytesIO(_dicom_bytes(ds))


def _staff(practice: Practice, password: str) -> list[StaffLogin]:
    logins = []
    for username, role in STAFF:
        user, _ = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.org"}
        )
        user.set_password(password)
        # The practice admin also gets the back office (BAAs, retention, access history),
        # limited to this practice by portal.admin.scope.
        user.is_staff = role == Role.ADMIN
        user.save()
        StaffMember.objects.update_or_create(
            user=user, defaults={"practice": practice, "role": role}
        )
        device, _ = TOTPDevice.objects.get_or_create(
            user=user, name="demo authenticator", defaults={"confirmed": True}
        )
        logins.append(StaffLogin(username, role.label, device.config_url))
    return logins


def build_demo(*, cbct_slices: int = 300) -> DemoResult:
    """Create or refresh the demo; a second run adds no duplicate records."""
    with transaction.atomic():
        practice, _ = Practice.objects.get_or_create(
            slug=PRACTICE_SLUG,
            defaults={
                "name": "Smile Dental Studio",
                "phone": "+1 555 0100",
                "email": "front-desk@smile.example",
                "address": "12 Harbor Street, Springfield",
                # The front desk issues links, so it may open the images it shares.
                "front_desk_views_images": True,
                "time_zone": "America/New_York",
                "date_order": "mdy",
            },
        )
        password = secrets.token_urlsafe(12)
        staff = _staff(practice, password)
    frontdesk = User.objects.get(username="demo-frontdesk")
    lines: list[str] = []

    # The sample files first: the CBCT, filed last, leads the front desk's recent studies.
    if not Patient.objects.filter(
        practice=practice, patient_id=SAMPLE_PATIENT["patient_id"]
    ).exists():
        lines += ingest_files(_sample_files(), practice=practice, user=frontdesk).lines()
    cbct_patient = Patient.objects.filter(practice=practice, patient_id=CBCT_PATIENT["patient_id"])
    if not cbct_patient.filter(studies__series__modality="CT").exists():
        report = ingest_files(_cbct_files(cbct_slices), practice=practice, user=frontdesk)
        lines += report.lines()
    cbct_patient = cbct_patient.get()
    cbct_study = cbct_patient.studies.order_by("created_at").first()
    if not cbct_patient.attachments.exists():
        extras = [
            ("intraoral-front.jpg", io.BytesIO(phantom.make_photo_jpeg(seed=1))),
            (
                "cbct-report.pdf",
                io.BytesIO(
                    phantom.make_report_pdf(
                        [
                            "Smile Dental Studio - CBCT report",
                            "Field of view: maxilla and mandible.",
                            "Findings: see images. Demo document, not a real report.",
                        ]
                    )
                ),
            ),
        ]
        report = ingest_files(extras, practice=practice, user=frontdesk, patient=cbct_patient)
        lines += report.lines()
        cbct_patient.attachments.update(study=cbct_study)
    Patient.objects.filter(practice=practice, patient_id=CBCT_PATIENT["patient_id"]).update(
        last_visit=date(2026, 10, 5), email="maria.demo@example.org"
    )

    # A token is shown only once, so each run replaces the demo link with a fresh one.
    ShareLink.objects.filter(practice=practice, recipient_name=DEMO_LINK_NAME).delete()
    issued = issue_link(
        study=cbct_study,
        created_by=User.objects.get(username="demo-clinician"),
        recipient_kind=ShareLink.Recipient.PATIENT,
        recipient_email="maria.demo@example.org",
        recipient_name=DEMO_LINK_NAME,
        expires_in_days=practice.share_default_days,
    )
    node, device = _dicom_receiver(practice)
    return DemoResult(
        dicom_node=node,
        dicom_device=device,
        practice=practice,
        cbct_study=cbct_study,
        password=password,
        staff=staff,
        share_path=issued.path,
        share_password=issued.password,
        share_birth_date=CBCT_PATIENT["birth"].isoformat(),
        ingest_lines=lines,
    )


def _dicom_receiver(practice: Practice) -> tuple[DicomNode | None, DicomPeer | None]:
    """Give the demo practice its receiver and device, unless the AE title is taken."""
    node = DicomNode.objects.filter(practice=practice).first()
    if node is None and not DicomNode.objects.filter(ae_title=DEMO_CALLED_AE).exists():
        node = DicomNode.objects.create(practice=practice, ae_title=DEMO_CALLED_AE)
    if node is None:
        return None, None
    device = DicomPeer.objects.filter(practice=practice, ae_title=DEMO_DEVICE["ae_title"]).first()
    if device is None:
        device = DicomPeer.objects.create(practice=practice, **DEMO_DEVICE)
    return node, device
