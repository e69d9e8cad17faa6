"""Compliance pages of the back office: BAAs with their document, holds, purges, alerts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Action, Outcome
from portal.compliance import alerts, retention
from portal.models import (
    Alert,
    BusinessAssociateAgreement,
    LegalHold,
    Purge,
    RetentionPolicy,
    StoredObject,
)
from sharing.services import issue_link
from tests.base import BaseTestCase

PDF = b"%PDF-1.4\n% signed agreement with Cloud Backup Inc\n" + b"x" * 5000 + b"\n%%EOF\n"


class ComplianceAdminTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice.is_staff = True
        self.alice.save()
        self.login(self.alice)

    def _add_baa(self, document: SimpleUploadedFile):
        return self.client.post(
            "/admin/portal/businessassociateagreement/add/",
            {
                "associate": "Cloud Backup Inc", "services": "Encrypted offsite backup",
                "signed_on": "2026-01-05", "effective_on": "2026-02-01",
                "expires_on": "2027-01-31", "signed_document": document,
            },
        )  # fmt: skip

    def test_the_signed_baa_is_stored_encrypted_and_opens_from_the_admin(self) -> None:
        r = self._add_baa(SimpleUploadedFile("BAA signed.pdf", PDF, "application/pdf"))
        self.assertEqual(r.status_code, 302)
        baa = BusinessAssociateAgreement.objects.get()
        self.assertEqual((baa.practice, baa.document_name), (self.practice, "BAA signed.pdf"))
        stored = Path(settings.STORAGES["vault"]["OPTIONS"]["location"]) / baa.document.storage_name
        self.assertNotIn(b"Cloud Backup", stored.read_bytes())
        r = self.client.get(f"/admin/portal/businessassociateagreement/{baa.pk}/change/")
        self.assertContains(r, "encrypted in the vault with AES-256-GCM")
        r = self.client.get(f"/admin/portal/businessassociateagreement/{baa.pk}/document/")
        self.assertEqual(b"".join(r.streaming_content), PDF)
        self.assertEqual(r["Content-Type"], "application/pdf")

    def test_a_replaced_document_stays_on_file_as_an_earlier_version(self) -> None:
        self._add_baa(SimpleUploadedFile("BAA 2025.pdf", PDF, "application/pdf"))
        baa = BusinessAssociateAgreement.objects.get()
        renewed = PDF.replace(b"signed agreement", b"renewed agreement")
        r = self.client.post(
            f"/admin/portal/businessassociateagreement/{baa.pk}/change/",
            {
                "associate": "Cloud Backup Inc", "signed_on": "2027-01-05",
                "expires_on": "2028-01-31",
                "signed_document": SimpleUploadedFile("BAA 2027.pdf", renewed, "application/pdf"),
            },
        )  # fmt: skip
        self.assertEqual(r.status_code, 302)
        base = f"/admin/portal/businessassociateagreement/{baa.pk}"
        r = self.client.get(f"{base}/document/")
        self.assertEqual(b"".join(r.streaming_content), renewed)
        page = self.client.get(f"{base}/change/").content.decode()
        self.assertIn("BAA 2027.pdf", page)
        self.assertIn("Earlier versions", page)
        earlier = baa.documents.get(name="BAA 2025.pdf")
        self.assertIn(f"{base}/document/{earlier.pk}/", page)
        r = self.client.get(f"{base}/document/{earlier.pk}/")
        self.assertEqual(b"".join(r.streaming_content), PDF)
        self.assertEqual(earlier.uploaded_by, self.alice)
        # A version opens only through its own agreement: not through another of this
        # practice's, nor is another practice's agreement reachable at all.
        mine = BusinessAssociateAgreement.objects.create(
            practice=self.practice, associate="Another vendor", signed_on=date(2020, 1, 1)
        )
        other = BusinessAssociateAgreement.objects.create(
            practice=self.practice_b, associate="Theirs", signed_on=date(2020, 1, 1)
        )
        for through in (mine, other):
            r = self.client.get(
                f"/admin/portal/businessassociateagreement/{through.pk}/document/{earlier.pk}/"
            )
            self.assertEqual(r.status_code, 404, through.associate)

    def test_a_5_mb_scan_is_stored_encrypted_and_reads_back_whole(self) -> None:
        scan = b"%PDF-1.7\n" + bytes(range(256)) * (5 * 2**12) + b"\n%%EOF\n"
        self.assertGreater(len(scan), 5 * 2**20)
        r = self._add_baa(SimpleUploadedFile("BAA scanned.pdf", scan, "application/pdf"))
        self.assertEqual(r.status_code, 302)
        baa = BusinessAssociateAgreement.objects.get()
        self.assertEqual(baa.document.plain_size, len(scan))
        stored = Path(settings.STORAGES["vault"]["OPTIONS"]["location"]) / baa.document.storage_name
        self.assertNotIn(bytes(range(256)), stored.read_bytes())
        r = self.client.get(f"/admin/portal/businessassociateagreement/{baa.pk}/document/")
        self.assertEqual(b"".join(r.streaming_content), scan)

    def test_a_document_over_the_limit_is_refused_with_the_limit_named(self) -> None:
        vault = Path(settings.STORAGES["vault"]["OPTIONS"]["location"])
        before = {p for p in vault.rglob("*") if p.is_file()}
        with self.settings(PORTAL_BAA_DOCUMENT_MAX_BYTES=3 * 2**20):
            big = b"%PDF-1.7\n" + b"x" * (3 * 2**20)
            r = self._add_baa(SimpleUploadedFile("BAA huge.pdf", big, "application/pdf"))
        self.assertContains(r, "The document is larger than 3 MB")
        self.assertFalse(BusinessAssociateAgreement.objects.exists())
        self.assertEqual({p for p in vault.rglob("*") if p.is_file()}, before)

    def test_the_upload_still_needs_the_csrf_token(self) -> None:
        """The view reads its body itself (to encrypt it as it arrives), and checks CSRF there."""
        self.client.handler.enforce_csrf_checks = True
        r = self._add_baa(SimpleUploadedFile("BAA signed.pdf", PDF, "application/pdf"))
        self.assertEqual(r.status_code, 403)
        self.assertFalse(BusinessAssociateAgreement.objects.exists())
        baa = BusinessAssociateAgreement.objects.create(
            practice=self.practice, associate="Old Vendor", signed_on=date(2020, 1, 1)
        )
        r = self.client.post(
            f"/admin/portal/businessassociateagreement/{baa.pk}/change/",
            {"associate": "Renamed", "signed_on": "2020-01-01"},
        )
        self.assertEqual(r.status_code, 403)
        baa.refresh_from_db()
        self.assertEqual(baa.associate, "Old Vendor")

    def test_a_document_that_is_not_a_pdf_or_picture_is_refused(self) -> None:
        stored = StoredObject.objects.count()
        r = self._add_baa(SimpleUploadedFile("baa.pdf", b"MZ\x90\x00 not a pdf", "application/pdf"))
        self.assertContains(r, "must be a PDF, JPEG or PNG file")
        self.assertFalse(BusinessAssociateAgreement.objects.exists())
        self.assertEqual(StoredObject.objects.count(), stored)

    def test_the_list_shows_the_status_at_a_glance(self) -> None:
        BusinessAssociateAgreement.objects.create(
            practice=self.practice, associate="Old Vendor", signed_on=date(2020, 1, 1),
            expires_on=date(2021, 1, 1),
        )  # fmt: skip
        r = self.client.get("/admin/portal/businessassociateagreement/")
        self.assertContains(r, '<span class="baa-status baa-ended">Ended</span>', html=True)

    def test_a_legal_hold_names_who_set_it(self) -> None:
        r = self.client.post(
            "/admin/portal/legalhold/add/", {"patient": self.pat.pk, "reason": "Litigation"}
        )
        self.assertEqual(r.status_code, 302)
        hold = LegalHold.objects.get()
        self.assertEqual(
            (hold.set_by, hold.practice, hold.reason), (self.alice, self.practice, "Litigation")
        )

    def test_an_admin_approves_the_due_list_and_requests_an_erasure(self) -> None:
        RetentionPolicy.objects.create(practice=self.practice, name="Adults", retain_years=1)
        retention.propose(date(2040, 1, 1))
        purge = Purge.objects.get()
        r = self.client.get("/admin/portal/purge/")
        self.assertContains(r, "Pat Example")
        r = self.client.post(
            "/admin/portal/purge/", {"action": "approve", "_selected_action": [purge.pk]}
        )
        purge.refresh_from_db()
        self.assertEqual((purge.status, purge.approved_by), ("approved", self.alice))
        r = self.client.post(
            "/admin/portal/purge/add/", {"patient": self.pat.pk, "reason": "Request"}
        )
        self.assertEqual(r.status_code, 302)
        erasure = Purge.objects.get(kind="erasure")
        self.assertEqual((erasure.status, erasure.requested_by), ("pending", self.alice))

    def test_an_alert_is_acknowledged_with_a_note(self) -> None:
        import audit

        share = issue_link(study=self.study, created_by=self.alice, recipient_kind="patient").share
        audit.record(Action.SHARE_LOCK, share=share, outcome=Outcome.DENIED)
        [alert] = alerts.scan()
        url = f"/admin/portal/alert/{alert.pk}/change/"
        r = self.client.post(url, {"note": "  "})
        self.assertContains(r, "Say what you found")
        r = self.client.post(url, {"note": "Patient mistyped the password; unlocked."})
        self.assertEqual(r.status_code, 302)
        alert = Alert.objects.get()
        self.assertEqual(alert.acknowledged_by, self.alice)
