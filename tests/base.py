"""Named personas shared by the view tests."""

from __future__ import annotations

import io
import os
import sys
import threading
from datetime import date
from pathlib import Path

import pydicom
from django.contrib.auth.models import User
from django.core.files.storage import storages
from django.test import TestCase
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from pydicom.data import get_testdata_file

from portal import vault
from portal.models import Instance, Patient, Practice, Role, Series, StaffMember, Study


def vault_files() -> set[str]:
    """Names of the ciphertext files in the vault's local storage (other tests' included)."""
    root = Path(storages["vault"].location)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def upload_threads() -> list[str]:
    """Threads still inside a form upload (portal.vault.uploads): sealing a file, or feeding it.

    The process's sealing threads stay once started; idle, they are inside no upload.
    """
    frames = sys._current_frames()
    busy = []
    for thread in threading.enumerate():
        frame = frames.get(thread.ident)
        while frame is not None and thread is not threading.current_thread():
            if frame.f_code.co_filename.endswith(os.path.join("vault", "uploads.py")):
                busy.append(thread.name)
                break
            frame = frame.f_back
    return busy


def make_staff(username: str, practice: Practice, role: str) -> User:
    """Return a staff user with a confirmed TOTP device."""
    user = User.objects.create_user(username, f"{username}@example.org", "correct-horse-42")
    StaffMember.objects.create(user=user, practice=practice, role=role)
    TOTPDevice.objects.create(user=user, name="default", confirmed=True)
    return user


def make_ct_study(
    patient: Patient, n: int = 2, *, uid_root: str = "1.2.826.0.1.3680043.8.498.1"
) -> Study:
    """Store n small CT instances for a patient through the vault and return their study."""
    study = Study.objects.create(
        practice=patient.practice,
        patient=patient,
        study_uid=f"{uid_root}.{patient.pk}",
        study_date=date(2026, 3, 4),
        description="CBCT maxilla",
        modalities="CT",
    )
    series = Series.objects.create(
        study=study,
        series_uid=f"{uid_root}.{patient.pk}.1",
        modality="CT",
        number=1,
        description="Axial",
    )
    for i in range(n):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.PatientName = patient.name.replace(" ", "^")
        ds.PatientID = patient.patient_id
        ds.StudyInstanceUID = study.study_uid
        ds.SeriesInstanceUID = series.series_uid
        ds.SOPInstanceUID = f"{uid_root}.{patient.pk}.1.{i + 1}"
        ds.InstanceNumber = i + 1
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        buf.seek(0)
        Instance.objects.create(
            practice=patient.practice,
            series=series,
            sop_instance_uid=ds.SOPInstanceUID,
            sop_class_uid=ds.SOPClassUID,
            transfer_syntax_uid=ds.file_meta.TransferSyntaxUID,
            instance_number=i + 1,
            rows=ds.Rows,
            columns=ds.Columns,
            bits_allocated=ds.BitsAllocated,
            pixel_representation=ds.PixelRepresentation,
            photometric=ds.PhotometricInterpretation,
            rescale_slope=float(ds.RescaleSlope),
            rescale_intercept=float(ds.RescaleIntercept),
            pixel_spacing=[float(v) for v in ds.PixelSpacing],
            slice_thickness=float(ds.SliceThickness),
            image_position=[float(v) for v in ds.ImagePositionPatient],
            image_orientation=[float(v) for v in ds.ImageOrientationPatient],
            blob=vault.store(buf),
        )
    return study


class BaseTestCase(TestCase):
    """Practice A with alice (admin) and bob (front desk); practice B with charlie; pat's study."""

    def setUp(self) -> None:
        super().setUp()
        self.practice = Practice.objects.create(slug="smile", name="Smile Dental", phone="555-0100")
        self.alice = make_staff("alice", self.practice, Role.ADMIN)
        self.bob = make_staff("bob", self.practice, Role.FRONT_DESK)
        self.practice_b = Practice.objects.create(slug="other", name="Other Dental")
        self.charlie = make_staff("charlie", self.practice_b, Role.CLINICIAN)
        self.pat = Patient.objects.create(
            practice=self.practice,
            patient_id="P-1001",
            name="Pat Example",
            birth_date=date(1980, 5, 17),
        )
        self.study = make_ct_study(self.pat)

    def login(self, user: User) -> None:
        """Sign in as user with the second factor already verified."""
        self.client.force_login(user)
        session = self.client.session
        session[DEVICE_ID_SESSION_KEY] = user.totpdevice_set.get().persistent_id
        session.save()

    def login_back_office(self, user: User) -> None:
        """Sign in as a practice admin who also opens the back office (Django staff status)."""
        user.is_staff = True
        user.save()
        self.login(user)
