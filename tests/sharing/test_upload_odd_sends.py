"""Upload-link sends that are odd but not wrong keep every good file and never answer 500."""

from __future__ import annotations

import io
import zipfile
from unittest import mock

from audit.models import AccessEvent, Action, Outcome
from sharing.models import ReceivedFile
from tests.base import BaseTestCase, vault_files
from tests.sharing.upload_helpers import UploadLinkMixin, scans

NAME_MAX = ReceivedFile._meta.get_field("name").max_length


class OddSendTestCase(UploadLinkMixin, BaseTestCase):
    def test_long_names_inside_a_zip_are_cut_and_the_good_file_is_kept(self) -> None:
        # A ZIP's name and its member's make a path past the 255 characters a row holds:
        # PostgreSQL refused the row and the whole send (the good scan with it) was lost.
        self.assertEqual(self.verify().status_code, 303)
        first, second, _ = scans()
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("n" * 200 + ".txt", b"not an image")
            z.writestr("scans/" + "d" * 200 + ".dcm", first)
            z.writestr("again/" + "e" * 200 + ".dcm", first)  # a duplicate in the same send
        r = self.send(("a" * 150 + ".zip", archive.getvalue()), ("IM2.dcm", second))
        self.assertEqual(r.status_code, 200)
        rows = list(ReceivedFile.objects.filter(link=self.link))
        self.assertEqual(len(rows), 4)
        self.assertTrue(all(len(row.name) <= NAME_MAX for row in rows), [len(r.name) for r in rows])
        pending = [row.name for row in rows if row.state == "pending"]
        self.assertEqual(len(pending), 2)
        self.assertTrue(any(name.endswith("d" * 20 + ".dcm") for name in pending))

    def test_a_send_whose_length_is_not_a_number_is_refused_with_a_reason(self) -> None:
        self.assertEqual(self.verify().status_code, 303)
        r = self.client.generic(
            "POST", "/u/files/", b"x" * 10, "multipart/form-data; boundary=b", CONTENT_LENGTH="abc"
        )
        self.assertEqual(r.status_code, 400)
        self.assertIn(b"length", r.content)

    def test_a_nul_byte_in_a_sent_name_loses_no_file(self) -> None:
        # PostgreSQL refuses NUL in text: the whole send failed and left files in the vault.
        import pydicom

        first, second, _ = scans()
        ds = pydicom.dcmread(io.BytesIO(second))
        ds.PatientName = "Evil\x00Name^X"
        ds.StudyDescription = "CBCT\x1b[31m from Dr Other"
        odd = io.BytesIO()
        ds.save_as(odd, enforce_file_format=True)
        self.verify()
        r = self.send(("IM1.dcm", first), ("IM2.dcm", odd.getvalue()))
        self.assertEqual(r.status_code, 200)
        received = {f.name: f for f in ReceivedFile.objects.all()}
        self.assertEqual({n: f.state for n, f in received.items()},
                         {"IM1.dcm": "pending", "IM2.dcm": "pending"})  # fmt: skip
        self.assertEqual(received["IM2.dcm"].patient_name, "X Evil Name")
        self.assertNotIn("\x1b", received["IM2.dcm"].study_description)

    def test_a_send_that_cannot_be_read_says_why(self) -> None:
        # A file name of a thousand characters overran the form's part headers: a bare 400.
        self.verify()
        name = "IM" + "x" * 1100 + ".dcm"  # a browser sends it whole (Django's client cuts it)
        body = (
            (
                f'--B\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                "Content-Type: application/dicom\r\n\r\n"
            ).encode()
            + scans()[0]
            + b"\r\n--B--\r\n"
        )
        r = self.client.generic(
            "POST", "/u/files/", body, content_type="multipart/form-data; boundary=B"
        )
        self.assertContains(r, "could not be read", status_code=400)
        self.assertContains(r, "shorter name", status_code=400)
        self.assertContains(r, 'name="files"', status_code=400)  # the form, to send again

    def test_a_send_of_too_many_files_says_what_to_do(self) -> None:
        # Over Django's 100 files a send was a bare 400: a CD's contents often are more.
        self.verify()
        before = vault_files()
        r = self.send(*[(f"IM{n}.dcm", b"x") for n in range(101)])
        self.assertContains(r, "At most 100 files", status_code=400)
        self.assertContains(r, "ZIP", status_code=400)
        self.assertFalse(ReceivedFile.objects.exists())
        self.assertEqual(vault_files(), before)  # the hundred that arrived before it stopped

    def test_a_file_sent_twice_waits_once_and_is_charged_once(self) -> None:
        # Sent twice in one send, staff read "already in the practice's records" of an image
        # the practice never had; sent again later, it waited twice and was charged twice.
        self.verify()
        first, second, _ = scans()
        report = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
        r = self.send(("IM1.dcm", first), ("IM1-copy.dcm", first), ("r.pdf", report),
                      ("r-copy.pdf", report))  # fmt: skip
        self.assertContains(r, "4 files received")
        r = self.send(("IM1-again.dcm", first), ("IM2.dcm", second))
        self.assertContains(r, "2 files received")
        rows = {f.name: (f.state, f.reason) for f in ReceivedFile.objects.filter(link=self.link)}
        again = (ReceivedFile.State.REFUSED, ReceivedFile.ALREADY_SENT)
        self.assertEqual(rows, {
            "IM1.dcm": ("pending", ""), "IM1-copy.dcm": again,
            "r.pdf": ("pending", ""), "r-copy.pdf": again,
            "IM1-again.dcm": again, "IM2.dcm": ("pending", ""),
        })  # fmt: skip
        self.link.refresh_from_db()
        self.assertEqual(self.link.received_bytes, len(first) + len(second) + len(report))
        page = self.client.get("/u/").content.decode()
        self.assertNotIn("Refused", page)

    def test_a_link_revoked_while_files_arrive_keeps_none_of_them(self) -> None:
        # A send under way when staff revoked the link was kept, pending on a revoked link.
        from sharing.uploads import intake
        from sharing.uploads.services import revoke_upload_link

        self.verify()
        checked = intake._check_and_seal

        def revoked_meanwhile(link, files, rows, sealed) -> None:  # noqa: ANN001
            checked(link, files, rows, sealed)
            revoke_upload_link(link, by=self.alice)  # staff revoke it as the last file lands

        before = vault_files()
        with mock.patch.object(intake, "_check_and_seal", revoked_meanwhile):
            r = self.send(("IM1.dcm", scans()[0]))
        self.assertContains(r, "no longer", status_code=410)
        self.assertFalse(ReceivedFile.objects.exists())
        refused = AccessEvent.objects.get(action=Action.UPLOAD, outcome=Outcome.DENIED)
        self.assertEqual(refused.detail["reason"], "link_closed")
        self.assertEqual(vault_files(), before)
        self.link.refresh_from_db()
        self.assertEqual(self.link.received_bytes, 0)

    def test_a_send_that_is_not_a_file_form_is_refused_with_a_reason(self) -> None:
        # A form-encoded post was read by the middleware first: setting the upload handler
        # then failed with a server error.
        self.verify()
        form = "application/x-www-form-urlencoded"
        r = self.client.post("/u/files/", "files=x", content_type=form)
        self.assertContains(r, "Choose the files", status_code=400)

    def test_an_empty_send_lists_only_the_latest_files(self) -> None:
        self.verify()
        ReceivedFile.objects.bulk_create(
            ReceivedFile(link=self.link, name=f"old{n}.pdf", state="refused") for n in range(205)
        )
        r = self.client.post("/u/files/", {})
        self.assertContains(r, "Choose at least one file.", status_code=400)
        self.assertNotContains(r, "old0.pdf", status_code=400)
        self.assertContains(r, "old204.pdf", status_code=400)
