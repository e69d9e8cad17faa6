"""A de-identified copy's life: shredded with its original, and with its link once the link
is revoked or can no longer be extended; the disclosure stays accounted for."""

from __future__ import annotations

from audit.models import AccessEvent, Action
from portal import vault
from portal.models import Instance, StoredObject, Study
from sharing.models import ShareLink
from tests.sharing.deidentified_helpers import DeidentifiedShareBase


class DeidentifiedCopyLifeTestCase(DeidentifiedShareBase):
    def test_shredding_the_original_shreds_its_copies(self) -> None:
        from portal.compliance.retention import shred_study

        issued = self.issue(deidentified=True)
        copy = issued.share.study
        blobs = [i.blob for i in Instance.objects.filter(series__study=copy)]
        shred_study(self.source)
        self.assertFalse(Study.objects.filter(pk__in=[copy.pk, self.source.pk]).exists())
        self.assertFalse(ShareLink.objects.exists())
        for blob in blobs:
            blob.refresh_from_db()
            self.assertIsNone(blob.wrapped_key)

    def test_staff_list_revoke_and_extend_the_link(self) -> None:
        issued = self.issue(deidentified=True)
        share = issued.share
        self.login(self.alice)
        listing = self.client.get("/shares/").content.decode()
        self.assertIn(f'id="link-{share.code}"', listing)
        self.assertIn("De-identified copy", listing)
        self.assertIn(self.patient.name, listing)  # staff know whose copy it is
        r = self.client.post(f"/shares/{share.code}/extend/", {"days": 3})
        self.assertEqual(r.status_code, 302)
        r = self.client.post(f"/shares/{share.code}/revoke/")
        self.assertEqual(r.status_code, 302)
        share.refresh_from_db()
        self.assertIsNotNone(share.revoked_at)

    def test_a_request_for_a_new_link_leads_staff_to_a_new_deidentified_link(self) -> None:
        from django.utils import timezone

        from sharing.models import LinkRequest

        old = self.issue(deidentified=True).share
        LinkRequest.objects.create(share=old, reason="expired", created_at=timezone.now())
        self.login(self.alice)
        listing = self.client.get("/shares/").content.decode()
        self.assertIn(f"/studies/{self.source.code}/?for=referrer&amp;copy=deidentified", listing)
        page = self.client.get(f"/studies/{self.source.code}/?for=referrer&copy=deidentified")
        self.assertContains(page, 'id="id_deidentified" checked')
        self.issue(deidentified=True)
        self.assertIsNotNone(LinkRequest.objects.get().handled_at)

    # -- a closed link's copy ---------------------------------------------------------------
    def copy_objects(self, share: ShareLink) -> list:
        instances = Instance.objects.filter(series__study=share.study).select_related("blob")
        return [i.blob for i in instances]

    def test_revoking_the_link_shreds_its_copy_and_keeps_the_account(self) -> None:
        from datetime import date

        from portal.compliance.disclosures import account

        with self.captureOnCommitCallbacks(execute=True):  # and its thumbnail and volume
            share = self.issue(deidentified=True, recipient_name="Dr Teach").share
        copies = self.copy_objects(share)
        self.assertTrue(share.study.series.filter(thumbnail__isnull=False).exists())
        originals = [i.blob for i in Instance.objects.filter(series__study=self.source)]
        self.login(self.alice)
        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(f"/shares/{share.code}/revoke/")
        for blob in copies:
            blob.refresh_from_db()
            self.assertIsNone(blob.wrapped_key, "the copy outlived its revoked link")
        for blob in originals:
            blob.refresh_from_db()
            self.assertIsNotNone(blob.wrapped_key)
        self.assertEqual(vault.read_bytes(originals[0])[128:132], b"DICM")
        entries = account(self.patient, date(2000, 1, 1), date.today())
        self.assertEqual(len(entries), 1)  # the disclosure is still accounted for
        self.assertIn("Dr Teach", entries[0].recipient)
        shred = AccessEvent.objects.get(action=Action.SHRED)
        self.assertEqual(shred.detail["reason"], "de-identified copy of a closed link")
        shredded = StoredObject.objects.filter(wrapped_key__isnull=True).count()
        self.assertGreater(shredded, len(copies))  # the thumbnail and ZIP as well
        self.assertEqual(shred.detail["objects"], shredded)

    def test_an_expired_copy_stays_while_the_link_can_be_extended(self) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from portal.compliance import retention

        share = self.issue(deidentified=True).share
        copies = self.copy_objects(share)
        ShareLink.objects.filter(pk=share.pk).update(expires_at=timezone.now() - timedelta(1))
        self.assertEqual(retention.enforce().copies, 0)  # staff may still extend it
        self.assertIsNotNone(Instance.objects.filter(series__study=share.study)[0].blob.wrapped_key)
        issued_long_ago = timezone.now() - timedelta(days=self.practice.share_max_days + 1)
        ShareLink.objects.filter(pk=share.pk).update(created_at=issued_long_ago)
        self.assertEqual(retention.enforce().copies, 1)
        self.assertEqual(retention.enforce().copies, 0)  # once
        for blob in copies:
            blob.refresh_from_db()
            self.assertIsNone(blob.wrapped_key)

    def test_a_link_whose_copy_was_removed_cannot_be_extended(self) -> None:
        from portal.deidentified_copy import dispose

        share = self.issue(deidentified=True).share
        dispose(share.study)
        self.login(self.alice)
        r = self.client.post(f"/shares/{share.code}/extend/", {"days": 3}, follow=True)
        self.assertContains(r, "copy made for this link was removed")

    def test_a_live_link_keeps_its_copy_when_the_practice_shortens_its_maximum(self) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from portal.compliance import retention

        share = self.issue(deidentified=True, expires_in_days=7).share
        ShareLink.objects.filter(pk=share.pk).update(created_at=timezone.now() - timedelta(3))
        self.practice.share_max_days = 1  # links issued from now on live a day at most
        self.practice.save()
        self.assertEqual(retention.enforce().copies, 0)
        blob = Instance.objects.filter(series__study=share.study)[0].blob
        self.assertIsNotNone(blob.wrapped_key, "the copy of a link still open was shredded")
