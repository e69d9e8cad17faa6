"""Practice admins: settings, staff roles, deactivation."""

from __future__ import annotations

from auditlog.models import LogEntry
from django.contrib.sessions.models import Session

from audit.models import AccessEvent, Action
from portal.models import Role
from tests.base import BaseTestCase


class PracticeSettingsTestCase(BaseTestCase):
    def _post(self, **extra) -> object:
        data = {"share_default_days": 10, "share_max_days": 20, "idle_timeout_minutes": 5,
                "time_zone": "Europe/Paris", "date_order": "mdy"}  # fmt: skip
        data["deid_dates"] = "remove"
        data.update(extra)
        return self.client.post("/practice/settings/", data)

    def test_it_saves_settings(self) -> None:
        self.login(self.alice)
        r = self._post(front_desk_views_images="on")
        self.assertRedirects(r, "/practice/settings/", fetch_redirect_response=False)
        self.practice.refresh_from_db()
        self.assertEqual(
            (self.practice.share_max_days, self.practice.idle_timeout_minutes), (20, 5)
        )
        self.assertTrue(self.practice.front_desk_views_images)
        self.assertEqual(
            (self.practice.time_zone, self.practice.date_order), ("Europe/Paris", "mdy")
        )
        self.assertFalse(self.practice.notify_link_activity)  # unticked

    def test_its_fields_are_named_in_plain_words(self) -> None:
        # They read as the columns' names: "Deid clean pixels", "Share default days".
        self.login(self.alice)
        page = self.client.get("/practice/settings/")
        self.assertContains(page, "A new link lasts (days)")
        self.assertContains(page, "De-identified copies: dates")
        for raw in ("Share default days", "Deid clean pixels", "Idle timeout minutes"):
            self.assertNotContains(page, raw)

    def test_it_offers_one_time_zone_per_region_and_keeps_an_old_alias(self) -> None:
        # About 600 names, old aliases (Asia/Asmera, America/Atka) among them.
        self.login(self.alice)
        page = self.client.get("/practice/settings/").content.decode()
        self.assertIn('value="Europe/Paris"', page)
        self.assertNotIn('value="America/Atka"', page)
        self.assertLess(page.count("<option"), 450)
        self.practice.time_zone = "US/Eastern"
        self.practice.save()
        self.assertIn(
            'value="US/Eastern" selected', self.client.get("/practice/settings/").content.decode()
        )
        self.assertEqual(self._post(time_zone="US/Eastern").status_code, 302)

    def test_it_refuses_hostile_values(self) -> None:
        self.login(self.alice)
        cases = [
            {"share_default_days": 40},
            {"share_max_days": 0},
            {"time_zone": "Mars/Olympus"},
            {"date_order": "dym"},
            {"share_max_days": 9999},
            {"idle_timeout_minutes": 0},
            {"idle_timeout_minutes": 600},
            {"idle_timeout_minutes": 16},
        ]
        for case in cases:
            with self.subTest(case=case):
                self.assertEqual(self._post(**case).status_code, 200)
        self.practice.refresh_from_db()
        self.assertEqual(self.practice.share_max_days, 30)

    def test_it_is_for_admins_only(self) -> None:
        self.login(self.bob)
        self.assertEqual(self._post().status_code, 404)
        self.assertEqual(self.client.get("/practice/settings/").status_code, 404)
        self.assertTrue(AccessEvent.objects.filter(action=Action.ACCESS_DENIED).exists())
        self.practice.refresh_from_db()
        self.assertEqual(self.practice.share_max_days, 30)

    def test_it_checks_practice(self) -> None:
        self.login(self.charlie)
        self.assertEqual(self.client.get("/practice/staff/").status_code, 404)

    def test_it_redirects_anonymous(self) -> None:
        self.assertEqual(self.client.get("/practice/settings/").status_code, 302)


class StaffListTestCase(BaseTestCase):
    def test_it_lists_and_changes_roles(self) -> None:
        self.login(self.alice)
        self.assertContains(self.client.get("/practice/staff/"), "bob")
        self.assertNotContains(self.client.get("/practice/staff/"), "charlie")
        self.client.post("/practice/staff/bob/role/", {"role": Role.CLINICIAN})
        self.bob.staffmember.refresh_from_db()
        self.assertEqual(self.bob.staffmember.role, Role.CLINICIAN)
        member = self.bob.staffmember
        entry = LogEntry.objects.filter(
            content_type__model="staffmember", object_pk=str(member.pk)
        ).latest("timestamp")
        self.assertEqual(entry.actor, self.alice)

    def test_it_deactivates_and_ends_sessions(self) -> None:
        other = self.client_class()
        other.force_login(self.bob)
        self.login(self.alice)
        self.client.post("/practice/staff/bob/active/", {"active": "0"})
        self.bob.refresh_from_db()
        self.assertFalse(self.bob.is_active)
        self.assertEqual(Session.objects.count(), 1)  # only alice's

    def test_it_refuses_self_demotion_and_bad_roles(self) -> None:
        self.login(self.alice)
        self.client.post("/practice/staff/alice/role/", {"role": Role.FRONT_DESK})
        self.client.post("/practice/staff/bob/role/", {"role": "superuser"})
        self.client.post("/practice/staff/alice/active/", {"active": "0"})
        self.alice.refresh_from_db()
        self.assertEqual(self.alice.staffmember.role, Role.ADMIN)
        self.assertTrue(self.alice.is_active)
        self.bob.staffmember.refresh_from_db()
        self.assertEqual(self.bob.staffmember.role, Role.FRONT_DESK)

    def test_it_checks_practice(self) -> None:
        admin_b = self.charlie.staffmember
        admin_b.role = Role.ADMIN
        admin_b.save()
        self.login(self.charlie)
        self.assertEqual(
            self.client.post("/practice/staff/bob/active/", {"active": "0"}).status_code, 404
        )
        self.bob.refresh_from_db()
        self.assertTrue(self.bob.is_active)

    def test_it_refuses_get_on_actions(self) -> None:
        self.login(self.alice)
        self.assertEqual(self.client.get("/practice/staff/bob/role/").status_code, 405)
        self.assertEqual(self.client.get("/practice/staff/bob/active/").status_code, 405)

    def test_it_resets_a_lost_authenticator(self) -> None:
        other = self.client_class()
        other.force_login(self.bob)
        self.login(self.alice)
        self.client.post("/practice/staff/bob/reset-authenticator/")
        self.assertFalse(self.bob.totpdevice_set.exists())
        self.assertEqual(Session.objects.count(), 1)  # only alice's
        self.assertEqual(
            self.client.get("/practice/staff/bob/reset-authenticator/").status_code, 405
        )
