"""The demo: idempotent, encrypted at rest, byte-identical originals, a working link."""

from __future__ import annotations

import hashlib
import io
import os
import shlex
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.core.management import call_command
from django.test import TestCase

from audit.models import AccessEvent
from portal import vault
from portal.demo import data as demo
from portal.models import Attachment, Instance, Patient, StoredObject, Study
from sharing.models import ShareLink
from sharing.services import find_link


class DemoTestCase(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        cls.result = demo.build_demo()

    def _vault_root(self) -> Path:
        return Path(settings.STORAGES["vault"]["OPTIONS"]["location"])

    def test_it_stores_no_patient_names_or_ids_in_plain_form(self) -> None:
        needles = [
            n.encode()
            for p in Patient.objects.filter(practice=self.result.practice)
            for n in (p.name, p.patient_id, p.name.split()[0], p.name.split()[-1])
        ]
        # A Part 10 file starts its meta group right after DICM: four bytes alone would turn up
        # by chance in hundreds of megabytes of ciphertext.
        needles += [b"Demo-Garcia^Maria", "Álvarez-Demo^José".encode(), b"Alvarez", b"DICM\x02\x00"]
        files = [p for p in self._vault_root().rglob("*") if p.is_file()]
        self.assertGreater(len(files), 300)
        for path in files:
            data = path.read_bytes()
            for needle in needles:
                self.assertNotIn(needle, data, f"{needle!r} in {path.name}")

    def test_every_ingested_cbct_file_reads_back_byte_identical(self) -> None:
        originals = {}
        for _name, fh in demo._cbct_files(300):
            data = fh.getvalue()
            import pydicom

            uid = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID
            originals[uid] = hashlib.sha256(data).hexdigest()
        stored = Instance.objects.filter(series__study=self.result.cbct_study)
        self.assertEqual(stored.count(), 300)
        for inst in stored.select_related("blob"):
            digest = hashlib.sha256(vault.read_bytes(inst.blob)).hexdigest()
            self.assertEqual(digest, originals[inst.sop_instance_uid])

    def test_verify_storage_passes(self) -> None:
        out = io.StringIO()
        call_command("verify_storage", stdout=out)
        count = StoredObject.objects.filter(wrapped_key__isnull=False).count()
        self.assertIn(f"{count} ok, 0 failed", out.getvalue())

    def test_running_it_twice_duplicates_nothing(self) -> None:
        counts = (
            Patient.objects.count(),
            Study.objects.count(),
            Instance.objects.count(),
            Attachment.objects.count(),
        )
        second = demo.build_demo()
        self.assertEqual(
            counts,
            (
                Patient.objects.count(),
                Study.objects.count(),
                Instance.objects.count(),
                Attachment.objects.count(),
            ),
        )
        self.assertEqual(ShareLink.objects.filter(recipient_name=demo.DEMO_LINK_NAME).count(), 1)
        self.assertIsNotNone(find_link(second.share_path.rsplit("/", 1)[1]))

    def test_it_makes_a_staff_user_of_each_role_with_an_authenticator(self) -> None:
        roles = {s.role for s in self.result.staff}
        self.assertEqual(roles, {"Practice admin", "Clinician", "Hygienist", "Front desk"})
        for s in self.result.staff:
            self.assertTrue(s.otpauth_uri.startswith("otpauth://totp/"))

    def test_its_share_link_opens_the_password_page(self) -> None:
        r = self.client.get(self.result.share_path)
        self.assertEqual(r.status_code, 303)
        self.assertNotIn(self.result.share_path.rsplit("/", 1)[1], r["Location"])

    def test_it_audits_the_ingest_and_the_share(self) -> None:
        self.assertTrue(AccessEvent.objects.filter(action="ingest").exists())
        self.assertTrue(AccessEvent.objects.filter(action="share_issue").exists())

    def test_a_search_without_accents_finds_the_accented_patient(self) -> None:
        from portal.models.imaging import fold

        patient = Patient.objects.get(patient_id=demo.SAMPLE_PATIENT["patient_id"])
        self.assertEqual(patient.name, "José Álvarez-Demo")
        self.assertIn(fold("alvarez"), patient.name_folded)

    def test_the_front_desk_sees_the_demo_cbct_first_among_recent_studies(self) -> None:
        from django.contrib.auth.models import User
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice

        self.client.force_login(User.objects.get(username="demo-frontdesk"))
        session = self.client.session
        device = TOTPDevice.objects.get(user__username="demo-frontdesk")
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        page = self.client.get("/")
        self.assertEqual(page.context["page"][0], self.result.cbct_study)

    def test_it_includes_compressed_sample_files(self) -> None:
        syntaxes = set(Instance.objects.values_list("transfer_syntax_uid", flat=True))
        self.assertIn("1.2.840.10008.1.2.5", syntaxes)  # RLE
        self.assertIn("1.2.840.10008.1.2.4.91", syntaxes)  # JPEG 2000
        self.assertTrue(Attachment.objects.filter(kind="photo").exists())
        self.assertTrue(Attachment.objects.filter(kind="pdf").exists())


class DemoPortTakenTestCase(TestCase):
    def test_a_port_in_use_stops_it_before_anything_changes(self) -> None:
        """A second run beside a running demo must not replace the first one's login and link."""
        import socket

        from django.core.management.base import CommandError

        from portal.models import Practice

        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with self.assertRaises(CommandError) as caught:
                call_command("demo", "--addrport", f"127.0.0.1:{port}", stdout=io.StringIO())
        message = str(caught.exception)
        self.assertIn(f"127.0.0.1:{port} is in use", message)
        self.assertIn("--addrport", message)
        self.assertIn("stop it", message)
        self.assertFalse(Practice.objects.exists(), "the demo data was made anyway")

    def test_a_demo_served_on_another_port_writes_links_to_that_port(self) -> None:

        from portal.management.commands.demo import serve_at

        with self.settings(), mock.patch.dict("os.environ"):
            os.environ.pop("PORTAL_BASE_URL", None)
            os.environ.pop("PORTAL_PASSKEY_ORIGINS", None)
            serve_at("http://127.0.0.1:8001")
            self.assertEqual(settings.PORTAL_BASE_URL, "http://127.0.0.1:8001")
            self.assertEqual(settings.OTP_WEBAUTHN_ALLOWED_ORIGINS, ["http://localhost:8001"])
        with self.settings(), mock.patch.dict("os.environ", {"PORTAL_BASE_URL": "https://x.test"}):
            serve_at("http://127.0.0.1:8001")
            self.assertNotEqual(settings.PORTAL_BASE_URL, "http://127.0.0.1:8001")

    def test_the_totp_hint_names_the_python_that_runs_it(self) -> None:
        import sys

        out = io.StringIO()
        call_command("demo", "--no-serve", "--cbct-slices", "120", stdout=out)
        hint = next(line for line in out.getvalue().splitlines() if "totp_code" in line)
        shown = shlex.split(hint.split("`")[1].split(" manage.py")[0])[-1]  # after PORTAL_DATA_DIR
        # The command as printed runs this very Python from here (a bare `python` would be the
        # system's, without Django): relative inside the checkout, absolute elsewhere.
        self.assertEqual((Path.cwd() / shown).absolute(), Path(sys.executable).absolute())
        self.assertNotEqual(shown, "python")

    def test_its_commands_name_the_data_folder_it_used(self) -> None:
        """Run as printed, `totp_code` and `dicom_receiver` must open the demo's folder, not
        make an empty one in ./data."""
        folder = "/tmp/a demo's folder"
        out = io.StringIO()
        with mock.patch.dict("os.environ", {"PORTAL_DATA_DIR": folder}):
            call_command("demo", "--no-serve", "--cbct-slices", "120", stdout=out)
        printed = [line for line in out.getvalue().splitlines() if " manage.py " in line]
        self.assertEqual(len(printed), 2, printed)
        for line in printed:
            self.assertIn("`PORTAL_DATA_DIR='/tmp/a demo'\"'\"'s folder' ", line)
        with mock.patch.dict("os.environ", {}, clear=False):
            os.environ.pop("PORTAL_DATA_DIR", None)
            out = io.StringIO()
            call_command("demo", "--no-serve", "--cbct-slices", "120", stdout=out)
        self.assertNotIn("PORTAL_DATA_DIR", out.getvalue())
