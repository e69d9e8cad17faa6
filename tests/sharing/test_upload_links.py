"""Upload links: staff ask for images, a sender verifies and sends, staff accept or decline."""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from datetime import date, timedelta
from pathlib import Path
from unittest import mock

import pydicom
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone

from audit.models import AccessEvent, Action
from portal import vault
from portal.demo.phantom import PhantomGeometry, write_cbct
from portal.ingest import ingest_path, pipeline
from portal.models import Attachment, Instance, StoredObject, Study
from sharing.logfilter import mask_tokens
from sharing.models import ReceivedFile, UploadLink, VerificationFailure
from sharing.services import hash_token
from sharing.uploads.intake import REFUSED_OVER_LIMIT
from tests.base import BaseTestCase
from tests.portal.ingest_helpers import pdf_bytes
from tests.sharing.upload_helpers import PASSWORD, UploadLinkMixin, scans


class UploadLinkTestCase(UploadLinkMixin, BaseTestCase):
    def test_staff_ask_for_images_and_see_the_link_once(self) -> None:
        self.login(self.bob)
        r = self.client.post(f"/received/patients/{self.pat.code}/ask/", {"sender_name": "Dr X"})
        self.assertEqual(r.status_code, 200)
        url = r.context["url"]
        self.assertIn("/u/", url)
        token = url.rsplit("/", 1)[1]
        self.assertTrue(UploadLink.objects.filter(token_hash=hash_token(token)).exists())
        self.assertEqual(mask_tokens(f"GET /u/{token} 303"), "GET /u/<token> 303")

    def test_the_ask_form_sent_again_issues_no_second_link(self) -> None:
        self.login(self.bob)
        page = self.client.get(f"/patients/{self.pat.code}/")
        key = page.context["issue_key"]
        self.assertContains(page, f'name="issue_key" value="{key}"')
        before = UploadLink.objects.count()
        ask = f"/received/patients/{self.pat.code}/ask/"
        self.assertEqual(self.client.post(ask, {"issue_key": key}).status_code, 200)
        again = self.client.post(ask, {"issue_key": key})
        self.assertContains(again, "already created", status_code=409)
        self.assertEqual(UploadLink.objects.count(), before + 1)

    def test_a_sender_name_with_control_characters_is_refused_with_a_reason(self) -> None:
        self.login(self.bob)
        before = UploadLink.objects.count()
        for name in ("Dr \u202eX", "a\x00b", "Dr\nX"):
            r = self.client.post(f"/received/patients/{self.pat.code}/ask/", {"sender_name": name})
            self.assertEqual(r.status_code, 400, repr(name))
            self.assertContains(r, "control characters", status_code=400)
        self.assertEqual(UploadLink.objects.count(), before)

    def test_it_checks_practice_when_asking(self) -> None:
        self.login(self.charlie)
        r = self.client.post(f"/received/patients/{self.pat.code}/ask/")
        self.assertEqual(r.status_code, 404)

    def test_the_token_leaves_the_address_bar_and_a_get_consumes_nothing(self) -> None:
        r = self.client.get(self.issued.path)
        self.assertEqual((r.status_code, r["Location"]), (303, "/u/"))
        self.assertContains(self.client.get("/u/"), "date of birth")
        self.link.refresh_from_db()
        self.assertEqual(self.link.failed_attempts, 0)

    def test_wrong_answers_lock_the_link(self) -> None:
        self.client.get(self.issued.path)
        for _ in range(5):
            self.client.post("/u/", {"password": "nope-nope-nope", "birth_date": "1980-05-17"})
            # Out of the per-address delay, so each guess is checked.
            VerificationFailure.objects.update(created_at=timezone.now() - timedelta(minutes=1))
        self.link.refresh_from_db()
        self.assertIsNotNone(self.link.locked_at)
        r = self.client.post("/u/", {"password": PASSWORD, "birth_date": "1980-05-17"})
        self.assertEqual(r.status_code, 423)

    def test_staff_see_open_upload_links_and_revoke_one(self) -> None:
        # A link issued by mistake stayed live until it expired: no page listed it.
        self.login(self.bob)
        page = self.client.get("/received/")
        self.assertContains(page, "Upload links still open")
        self.assertContains(page, "Dr Other")
        self.assertContains(page, f'action="/received/links/{self.link.code}/revoke/"')
        r = self.client.post(f"/received/links/{self.link.code}/revoke/")
        self.assertEqual(r.status_code, 302)
        self.assertNotContains(self.client.get("/received/"), "Dr Other")
        self.assertEqual(self.client_class().get(self.issued.path).status_code, 410)

    def test_staff_unlock_a_link_locked_by_wrong_answers(self) -> None:
        # The locked page said the practice could unlock it; nothing could.
        UploadLink.objects.filter(pk=self.link.pk).update(
            locked_at=timezone.now(), failed_attempts=5
        )
        unlock = f"/received/links/{self.link.code}/unlock/"
        r = self.client.post(unlock)  # nobody signed in
        self.assertEqual((r.status_code, r["Location"].split("?")[0]), (302, "/login/"))
        self.login(self.charlie)  # another practice
        self.assertEqual(self.client.post(unlock).status_code, 404)
        self.login(self.bob)
        self.assertEqual(self.client.get(unlock).status_code, 405)
        self.link.refresh_from_db()
        self.assertIsNotNone(self.link.locked_at)
        page = self.client.get("/received/")
        self.assertContains(page, "locked after wrong answers")
        self.assertContains(page, f'action="/received/links/{self.link.code}/unlock/"')
        self.assertEqual(
            self.client.post(f"/received/links/{self.link.code}/unlock/").status_code, 302
        )
        self.link.refresh_from_db()
        self.assertEqual((self.link.locked_at, self.link.failed_attempts), (None, 0))
        self.assertTrue(
            AccessEvent.objects.filter(action=Action.SHARE_UNLOCK, user=self.bob).exists()
        )
        self.client = self.client_class()
        self.assertEqual(self.verify().status_code, 303)  # the sender gets in again

    def test_an_expired_link_says_so(self) -> None:
        UploadLink.objects.filter(pk=self.link.pk).update(expires_at=timezone.now())
        self.assertEqual(self.client.get(self.issued.path).status_code, 410)

    def test_a_sender_whose_link_was_withdrawn_or_expired_meanwhile_hears_so(self) -> None:
        for change, heading, status in (
            ({"revoked_at": timezone.now()}, "This link has been withdrawn", 410),
            ({"revoked_at": None, "expires_at": timezone.now()}, "This link has expired", 410),
        ):
            self.client = self.client_class()
            UploadLink.objects.filter(pk=self.link.pk).update(
                revoked_at=None, expires_at=timezone.now() + timedelta(days=1)
            )
            self.assertEqual(self.verify().status_code, 303)
            UploadLink.objects.filter(pk=self.link.pk).update(**change)
            r = self.send(("a.dcm", scans()[0]))
            self.assertContains(r, heading, status_code=status)
        self.assertFalse(ReceivedFile.objects.exists())

    @override_settings(PORTAL_UPLOAD_LINK_MAX_REQUEST_BYTES=512 * 2**20)
    def test_the_send_page_says_its_limits_as_people_write_them(self) -> None:
        self.verify()
        page = self.client.get("/u/").content.decode().replace("\xa0", " ")
        self.assertIn("Each file may be up to 512 MB;", page)
        self.assertNotIn(".0 MB", page)
        self.assertNotIn(".0 GB", page)

    def test_an_unknown_upload_link_speaks_to_a_sender_not_a_patient(self) -> None:
        r = self.client.get("/u/" + "x" * 43)
        self.assertContains(r, "Nothing to show here", status_code=404)
        self.assertContains(r, "a link to send images", status_code=404)
        self.assertNotContains(r, "your images", status_code=404)

    def test_sending_needs_verification(self) -> None:
        self.client.get(self.issued.path)
        r = self.send(("a.dcm", scans()[0]))
        self.assertEqual(r.status_code, 404)
        self.assertFalse(ReceivedFile.objects.exists())

    def test_files_wait_checked_and_sealed_until_staff_accept(self) -> None:
        self.assertEqual(self.verify().status_code, 303)
        first, second, third = scans()
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("DICOM/IM2", second)
            z.writestr("DICOM/IM3", third)
        r = self.send(("IM1.dcm", first), ("notes.txt", b"hello"), ("cd.zip", archive.getvalue()))
        self.assertEqual(r.status_code, 200)
        states = dict(ReceivedFile.objects.values_list("name", "state"))
        self.assertEqual(states["IM1.dcm"], "pending")
        self.assertEqual(states["notes.txt"], "refused")
        self.assertEqual(states["cd.zip/DICOM/IM3"], "pending")
        self.assertFalse(Study.objects.filter(description="CBCT from Dr Other").exists())
        self.login(self.bob)
        waiting = self.client.get("/received/")
        self.assertContains(waiting, "CBCT from Dr Other")
        self.assertContains(waiting, "received ")  # when, and how big, before deciding
        self.assertContains(waiting, "KB")
        r = self.client.post(f"/received/links/{self.link.code}/accept/")
        self.assertEqual(r.status_code, 302)
        # Staff hear what became of them (the list just emptied, with no word), by a message
        # that travels in a cookie: it never names the patient.
        told = CookieStorage(RequestFactory().get("/"))._decode(r.cookies["messages"].value)
        self.assertNotIn(self.pat.name, " ".join(str(m) for m in told))
        self.assertContains(self.client.get("/received/"), "Accepted 3 files into")
        study = Study.objects.get(description="CBCT from Dr Other")
        self.assertEqual(study.patient, self.pat)
        self.assertEqual(Instance.objects.filter(series__study=study).count(), 3)
        self.assertEqual(ReceivedFile.objects.filter(state="accepted").count(), 3)
        self.assertTrue(AccessEvent.objects.filter(action=Action.INGEST, user=self.bob).exists())

    def test_a_report_sent_with_another_patients_scan_stays_with_this_patient(self) -> None:
        # The scan's study is already on record for another patient of the practice.
        first, second, _ = scans("OTHER-77")
        folder = Path(tempfile.mkdtemp(prefix="upload-link-other-"))
        (folder / "IM1.dcm").write_bytes(first)
        other = ingest_path(folder, practice=self.practice).studies[0]
        self.assertNotEqual(other.patient, self.pat)
        self.verify()
        self.send(("IM2.dcm", second), ("report.pdf", pdf_bytes()))
        self.login(self.bob)
        self.client.post(f"/received/links/{self.link.code}/accept/")
        states = dict(ReceivedFile.objects.values_list("name", "state"))
        self.assertEqual(states, {"IM2.dcm": "declined", "report.pdf": "accepted"})
        report = Attachment.objects.get(original_name__endswith="report.pdf")
        self.assertEqual(report.patient, self.pat)
        self.assertIsNone(report.study)  # not filed in the other patient's study
        self.assertFalse(other.attachments.exists())

    def test_a_send_without_a_verified_link_is_refused_before_its_body_is_read(self) -> None:
        # It was parsed into memory (CSRF reads the form) before the link was looked at:
        # three strangers' 500 MiB posts held 1 GiB.
        client = Client(enforce_csrf_checks=True)
        client.get(self.issued.path)  # not verified
        token = client.get("/u/").context["csrf_token"]
        body = SimpleUploadedFile("IM1.dcm", b"x" * 300_000)
        r = client.post("/u/files/", {"files": [body], "csrfmiddlewaretoken": str(token)})
        self.assertEqual(r.status_code, 404)
        self.assertFalse(r.wsgi_request._read_started, "the body was read")

    def test_a_send_that_cannot_be_recorded_leaves_no_file_and_no_charge(self) -> None:
        from django.db import DatabaseError

        from tests.portal.test_ingest import vault_files

        self.verify()
        before = len(vault_files())
        # The database fails as the send is recorded (it did for a NUL byte, on PostgreSQL).
        with mock.patch("sharing.uploads.services.audit.record", side_effect=DatabaseError):
            with self.assertRaises(DatabaseError):
                self.send(("IM1.dcm", scans()[0]), ("report.pdf", pdf_bytes()))
        self.assertEqual(len(vault_files()), before)
        self.link.refresh_from_db()
        self.assertEqual(self.link.received_bytes, 0)
        self.assertFalse(ReceivedFile.objects.exists())

    def test_a_sender_is_not_told_what_the_practice_already_holds(self) -> None:
        # "Already in the practice's records" told a sender holding one patient's link
        # whether the practice held an image of any patient.
        first, second, _ = scans("OTHER-77")
        folder = Path(tempfile.mkdtemp(prefix="upload-link-held-"))
        (folder / "IM1.dcm").write_bytes(first)
        ingest_path(folder, practice=self.practice)
        self.verify()
        r = self.send(("IM1.dcm", first), ("IM2.dcm", second))
        self.assertContains(r, "2 files received")
        self.assertNotContains(r, "already")
        self.assertNotContains(r, "Refused")
        self.assertEqual(
            dict(ReceivedFile.objects.values_list("name", "state")),
            {"IM1.dcm": "refused", "IM2.dcm": "pending"},  # staff have nothing to decide
        )
        # Nor once staff decide on the rest: the sender's list told the two apart.
        sender = self.client
        self.client = self.client_class()
        self.login(self.bob)
        self.client.post(f"/received/links/{self.link.code}/decline/")
        page = sender.get("/u/").content.decode()
        told = re.findall(r"<li>(IM\d\.dcm) <span class=\"muted\">· ([^<]*)</span>", page)
        self.assertEqual(sorted(told), [("IM1.dcm", "Received"), ("IM2.dcm", "Received")])

    def test_the_room_left_does_not_tell_what_the_practice_already_holds(self) -> None:
        """The room a link has left fell for a new file and not for a copy of one the practice
        held: a sender could test whether the practice holds an image of any patient. Each is
        charged once, whichever it is, and a copy sent again is not charged again."""
        held, new, _ = scans("OTHER-77")
        self.assertEqual(len(held), len(new))
        folder = Path(tempfile.mkdtemp(prefix="upload-link-held-"))
        (folder / "IM1.dcm").write_bytes(held)
        ingest_path(folder, practice=self.practice)
        self.verify()

        def charged(name: str, data: bytes) -> int:
            before = UploadLink.objects.get(pk=self.link.pk).received_bytes
            self.assertContains(self.send((name, data)), "1 file received")
            return UploadLink.objects.get(pk=self.link.pk).received_bytes - before

        self.assertEqual(charged("IM1.dcm", held), charged("IM2.dcm", new))
        self.assertEqual(charged("IM1.dcm", held), 0)  # sent again: charged once, as ...
        self.assertEqual(charged("IM2.dcm", new), 0)  # ... a new file sent again

    def test_another_copy_of_an_instance_waiting_is_not_kept_twice(self) -> None:
        """The same instance exported again (other bytes, same SOP Instance UID) waited twice,
        for staff to accept one and see the other refused as a duplicate."""
        first = scans("OTHER-77")[0]
        again = pydicom.dcmread(io.BytesIO(first))
        again.InstitutionName = "Exported again"
        buffer = io.BytesIO()
        again.save_as(buffer, enforce_file_format=True)
        self.verify()
        self.assertContains(self.send(("IM1.dcm", first)), "1 file received")
        self.assertContains(self.send(("IM1-again.dcm", buffer.getvalue())), "1 file received")
        self.assertEqual(
            dict(ReceivedFile.objects.values_list("name", "reason")),
            {"IM1.dcm": "", "IM1-again.dcm": ReceivedFile.ALREADY_SENT},
        )

    def test_a_send_that_fails_midway_leaves_no_file_and_no_charge(self) -> None:
        from django.db import DatabaseError

        from sharing.uploads import intake
        from tests.portal.test_ingest import vault_files

        self.verify()
        before = len(vault_files())
        real = intake.process
        calls = []

        def second_fails(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            calls.append(1)
            if len(calls) == 2:
                raise DatabaseError("the database went away")
            return real(*args, **kwargs)

        with mock.patch.object(intake, "process", side_effect=second_fails):
            with self.assertRaises(DatabaseError):
                self.send(("IM1.dcm", scans()[0]), ("IM2.dcm", scans()[1]))
        self.assertEqual(len(vault_files()), before)
        self.link.refresh_from_db()
        self.assertEqual(self.link.received_bytes, 0)

    def test_declined_files_are_shredded(self) -> None:
        self.verify()
        self.send(("IM1.dcm", scans()[0]))
        received = ReceivedFile.objects.get()
        blob_pk = received.blob_id
        self.login(self.alice)
        self.client.post(f"/received/links/{self.link.code}/decline/")
        received.refresh_from_db()
        self.assertEqual((received.state, received.blob_id), ("declined", None))
        self.assertFalse(StoredObject.objects.filter(pk=blob_pk).exists())
        self.assertFalse(Study.objects.filter(description="CBCT from Dr Other").exists())

    def test_a_second_decision_on_files_already_decided_changes_nothing(self) -> None:
        """A double-clicked accept, or a decline racing an accept, read the files as pending
        before the first decision committed: the second finds them decided and stops."""
        from sharing.uploads import decisions

        self.verify()
        self.send(("IM1.dcm", scans()[0]))
        stale = list(ReceivedFile.objects.select_related("blob", "link"))
        decisions.accept(stale, by=self.bob)
        for decide in (decisions.accept, decisions.decline):
            again = list(ReceivedFile.objects.filter(pk__in=[f.pk for f in stale]))
            for f in again:  # as read before the first decision committed
                f.state = ReceivedFile.State.PENDING
                f.link = self.link
            decide(again, by=self.alice)
        received = ReceivedFile.objects.get()
        self.assertEqual((received.state, received.decided_by), ("accepted", self.bob))
        instance = Instance.objects.get(series__study__description="CBCT from Dr Other")
        self.assertEqual(vault.read_bytes(instance.blob)[128:132], b"DICM")

    def test_another_practice_cannot_accept(self) -> None:
        self.verify()
        self.send(("IM1.dcm", scans()[0]))
        self.login(self.charlie)
        r = self.client.post(f"/received/links/{self.link.code}/accept/")
        self.assertEqual(r.status_code, 404)
        self.assertEqual(ReceivedFile.objects.get().state, "pending")

    def test_it_keeps_to_the_links_size_limit(self) -> None:
        UploadLink.objects.filter(pk=self.link.pk).update(max_bytes=10_000)
        self.verify()
        files = scans()
        self.send(("IM1.dcm", files[0]), ("IM2.dcm", files[1]), ("IM3.dcm", files[2]))
        refused = ReceivedFile.objects.filter(state="refused")
        self.assertTrue(refused.exists())
        self.assertIn("no room", refused.first().reason)
        self.link.refresh_from_db()
        self.assertLessEqual(self.link.received_bytes, 10_000)

    def test_a_file_bigger_than_the_room_left_is_refused_before_it_is_read(self) -> None:
        # A small ZIP may hold a large file: its size is known before a byte of it is read.
        UploadLink.objects.filter(pk=self.link.pk).update(max_bytes=100_000)
        big = write_cbct(
            Path(tempfile.mkdtemp(prefix="upload-link-big-")),
            PhantomGeometry(slices=1, rows=256, columns=256, marker_slice=0),
            patient_name="Example^Pat",
            patient_id="OTHER-77",
            birth_date=date(1980, 5, 17),
            study_date=date(2025, 11, 3),
        )[0].read_bytes()
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("DICOM/BIG", big)
        self.assertLess(len(archive.getvalue()), 100_000)
        self.assertGreater(len(big), 100_000)
        self.verify()
        sealed = []
        real_seal = pipeline.Context.seal

        def seal(ctx, src):
            sealed.append(src)
            return real_seal(ctx, src)

        with mock.patch.object(pipeline.Context, "seal", seal):
            self.send(("cd.zip", archive.getvalue()), ("IM1.dcm", scans()[0]))
        refused = ReceivedFile.objects.get(name="cd.zip/DICOM/BIG")
        self.assertEqual((refused.state, refused.reason), ("refused", REFUSED_OVER_LIMIT))
        self.assertEqual(ReceivedFile.objects.get(name="IM1.dcm").state, "pending")
        self.assertEqual(len(sealed), 1)  # only the file that fits was read and sealed

    @override_settings(PORTAL_MAX_FILE_BYTES=1000)
    def test_a_file_over_the_portals_limit_is_not_blamed_on_the_links_room(self) -> None:
        UploadLink.objects.filter(pk=self.link.pk).update(max_bytes=500)
        self.verify()
        self.send(("IM1.dcm", scans()[0]))
        self.assertEqual(ReceivedFile.objects.get().reason, "file is larger than allowed")

    @override_settings(PORTAL_UPLOAD_LINK_MAX_REQUEST_BYTES=1000)
    def test_it_refuses_a_send_too_big_before_reading_it(self) -> None:
        self.verify()
        r = self.send(("IM1.dcm", scans()[0]))
        self.assertEqual(r.status_code, 413)
        self.assertFalse(ReceivedFile.objects.exists())

    def test_an_anonymous_visitor_is_sent_to_sign_in(self) -> None:
        r = self.client.get("/received/")
        self.assertEqual(r.status_code, 302)
        self.assertIn("/login/", r["Location"])

    def test_get_on_post_only_views_is_405(self) -> None:
        self.login(self.alice)
        for url in ["/u/files/", f"/received/links/{self.link.code}/accept/"]:
            with self.subTest(url=url):
                self.assertEqual(self.client.get(url).status_code, 405)
