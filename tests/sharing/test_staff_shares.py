"""Staff link management: list, revoke, unlock, extend."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from audit.models import AccessEvent, Action
from sharing.models import ShareLink
from sharing.services import issue_link
from tests.base import BaseTestCase


class StaffSharesTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.share = issue_link(
            study=self.study, created_by=self.alice, recipient_kind="patient", expires_in_days=7
        ).share

    def test_it_tells_links_apart(self) -> None:
        """Recipient, kind, issuer and when, what it covers, expiry, use and state per link."""
        self.alice.first_name, self.alice.last_name = "Alice", "Admin"
        self.alice.save()
        series = self.study.series.get()
        issue_link(study=self.study, created_by=self.alice, recipient_kind="referrer",
                   recipient_email="dr@example.org", recipient_name="Dr Lee",
                   series=[series])  # fmt: skip
        self.login(self.bob)
        rows = re.findall(
            r'<tr class="share-row".*?</tr>', self.client.get("/shares/").content.decode(), re.S
        )
        self.assertEqual(len(rows), 2)
        referrer = next(row for row in rows if "Dr Lee" in row)
        for shown in ("Referring clinician", "dr@example.org", "Alice Admin", "1 series",
                      "CBCT maxilla", "0 opens", "never opened", "Active"):  # fmt: skip
            self.assertIn(shown, referrer)
        patient = next(row for row in rows if "Dr Lee" not in row)
        self.assertIn("Whole study", patient)
        self.assertNotEqual(re.sub(r"[0-9a-f-]{36}", "", referrer),
                            re.sub(r"[0-9a-f-]{36}", "", patient))  # fmt: skip

    def test_revoke_asks_to_confirm_and_says_what_it_ends(self) -> None:
        self.login(self.bob)
        page = self.client.get("/shares/").content.decode()
        confirm = re.search(r'<details class="confirm">.*?</details>', page, re.S)[0]
        self.assertIn("<summary", confirm)
        self.assertIn(f'action="/shares/{self.share.code}/revoke/"', confirm)
        self.assertIn("no longer opens", confirm)
        self.assertIn("stopped at their next click", confirm)

    def test_extend_offers_only_what_it_accepts(self) -> None:
        self.login(self.bob)
        page = self.client.get("/shares/").content.decode()
        self.assertIn('name="days" min="1" max="30"', page)
        r = self.client.post(f"/shares/{self.share.code}/extend/", {"days": 30})
        self.assertEqual(r.status_code, 302)
        self.share.refresh_from_db()
        limit = self.share.created_at + timedelta(days=30)
        self.assertEqual(self.share.expires_at, limit)
        self.assertContains(self.client.get("/shares/"), "now expires on")

    def test_extend_offers_a_later_expiry_than_the_link_has(self) -> None:
        # It offered the practice's default length: for a new link, the expiry it already had,
        # so Extend moved it by a minute.
        days = self.practice.share_default_days
        ShareLink.objects.filter(pk=self.share.pk).update(
            expires_at=timezone.now() + timedelta(days=days)
        )
        self.share.refresh_from_db()
        self.login(self.bob)
        page = self.client.get("/shares/").content.decode()
        offered = int(re.search(r'name="days" min="1" max="\d+" value="(\d+)"', page)[1])
        self.client.post(f"/shares/{self.share.code}/extend/", {"days": offered})
        before = self.share.expires_at
        self.share.refresh_from_db()
        self.assertGreaterEqual(self.share.expires_at - before, timedelta(days=6, hours=23))

    def test_it_lists_links_with_status(self) -> None:
        self.login(self.bob)
        ShareLink.objects.filter(pk=self.share.pk).update(open_count=3, download_count=1)
        r = self.client.get("/shares/")
        self.assertContains(r, '<span class="state state-active">Active</span>')
        self.assertContains(r, "3 opens · 1 download")
        self.assertContains(self.client.get("/shares/?status=revoked"), "No links.")
        # The list names patients and recipients: each look at it is in the access history.
        reads = AccessEvent.objects.filter(action=Action.SEARCH, user=self.bob).order_by("id")
        self.assertEqual(
            [(e.detail["status"], e.detail["results"]) for e in reads], [("", 1), ("revoked", 0)]
        )

    def test_it_revokes(self) -> None:
        self.login(self.bob)
        r = self.client.post(f"/shares/{self.share.code}/revoke/", {"next": "/shares/"})
        self.assertRedirects(r, "/shares/", fetch_redirect_response=False)
        self.share.refresh_from_db()
        self.assertEqual(self.share.status, "revoked")
        self.assertEqual(AccessEvent.objects.filter(action=Action.SHARE_REVOKE).count(), 1)

    def test_it_says_when_already_revoked(self) -> None:
        self.login(self.bob)
        self.client.post(f"/shares/{self.share.code}/revoke/")
        self.share.refresh_from_db()
        revoked_at = self.share.revoked_at
        r = self.client.post(f"/shares/{self.share.code}/revoke/", follow=True)
        self.assertContains(r, "already revoked; nothing changed")
        self.share.refresh_from_db()
        self.assertEqual(self.share.revoked_at, revoked_at)
        self.assertEqual(AccessEvent.objects.filter(action=Action.SHARE_REVOKE).count(), 1)

    def test_it_unlocks(self) -> None:
        ShareLink.objects.filter(pk=self.share.pk).update(
            locked_at=timezone.now(), failed_attempts=5
        )
        self.login(self.bob)
        self.assertContains(self.client.get("/shares/?status=locked"), "Unlock")
        self.client.post(f"/shares/{self.share.code}/unlock/")
        self.share.refresh_from_db()
        self.assertEqual((self.share.status, self.share.failed_attempts), ("active", 0))
        self.assertTrue(AccessEvent.objects.filter(action=Action.SHARE_UNLOCK).exists())

    def test_it_extends_within_the_maximum(self) -> None:
        self.login(self.bob)
        self.client.post(f"/shares/{self.share.code}/extend/", {"days": 20})
        self.share.refresh_from_db()
        self.assertGreater(self.share.expires_at, timezone.now() + timedelta(days=19))
        r = self.client.post(f"/shares/{self.share.code}/extend/", {"days": 45}, follow=True)
        self.assertContains(r, "at most 30 days")
        self.assertEqual(AccessEvent.objects.filter(action=Action.SHARE_EXTEND).count(), 1)

    def test_it_refuses_hostile_extend_input(self) -> None:
        self.login(self.bob)
        before = self.share.expires_at
        for days in ["", "-1", "abc", "0"]:
            with self.subTest(days=days):
                self.client.post(f"/shares/{self.share.code}/extend/", {"days": days})
                self.share.refresh_from_db()
                self.assertEqual(self.share.expires_at, before)

    def test_it_ignores_a_foreign_next(self) -> None:
        self.login(self.bob)
        r = self.client.post(
            f"/shares/{self.share.code}/revoke/", {"next": "https://evil.example/"}
        )
        self.assertRedirects(r, "/shares/", fetch_redirect_response=False)

    def test_it_checks_practice(self) -> None:
        self.login(self.charlie)
        for action in ["revoke", "unlock", "extend"]:
            with self.subTest(action=action):
                r = self.client.post(f"/shares/{self.share.code}/{action}/", {"days": 3})
                self.assertEqual(r.status_code, 404)
        self.assertNotContains(self.client.get("/shares/"), str(self.share.code))
        self.share.refresh_from_db()
        self.assertEqual(self.share.status, "active")
        self.assertEqual(AccessEvent.objects.filter(action=Action.ACCESS_DENIED).count(), 3)

    def test_it_redirects_anonymous(self) -> None:
        self.assertEqual(self.client.get("/shares/").status_code, 302)
        self.assertEqual(self.client.post(f"/shares/{self.share.code}/revoke/").status_code, 302)

    def test_it_refuses_get_on_actions(self) -> None:
        self.login(self.bob)
        for action in ["revoke", "unlock", "extend"]:
            with self.subTest(action=action):
                r = self.client.get(f"/shares/{self.share.code}/{action}/")
                self.assertEqual(r.status_code, 405)
