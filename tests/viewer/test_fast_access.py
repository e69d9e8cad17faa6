"""The slice endpoint's fast access decision agrees with the scope's querysets and stays fresh."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AccessEvent, Outcome
from portal.access import Scope, fetch_row, member_of, series_owner
from portal.compliance.retention import shred_study
from portal.models import Patient, Role, Series, StaffMember
from sharing.models import ShareLink
from sharing.services import revoke_link
from tests.base import make_ct_study, make_staff
from tests.sharing.helpers import ShareTestCase, add_attachments
from tests.viewer.helpers import make_volume_series
from viewer import layouts, mpr


class AllowsSeriesTestCase(ShareTestCase):
    """Scope.allows_series decides exactly what Scope.series() would, for every kind of scope."""

    def setUp(self) -> None:
        super().setUp()
        self.volume, _ = make_volume_series(self.study)
        self.photo, _ = add_attachments(self.study)
        bea = Patient.objects.create(
            practice=self.practice, patient_id="P-2", name="Bea Other", birth_date=date(1990, 1, 2)
        )
        self.bea_study = make_ct_study(bea, uid_root="1.2.826.0.1.3680043.8.498.2")
        other = Patient.objects.create(
            practice=self.practice_b, patient_id="P-3", name="Cy Far", birth_date=date(1970, 1, 2)
        )
        self.far_study = make_ct_study(other, uid_root="1.2.826.0.1.3680043.8.498.3")
        self.hygienist = make_staff("hyg", self.practice, Role.HYGIENIST)
        self.pat.assigned_staff.add(self.hygienist)

    def scopes(self) -> dict[str, Scope]:
        def staff(user) -> Scope:
            member = StaffMember.objects.get(user=user)
            return Scope(practice=member.practice, staff=member)

        first_series = self.study.series.order_by("pk").first()
        return {
            "admin A": staff(self.alice),
            "front desk A": staff(self.bob),
            "clinician B": staff(self.charlie),
            "hygienist": staff(self.hygienist),
            "whole-study share": Scope(share=self.share),
            "one-series share": Scope(share=self.issue(series=[first_series]).share),
            "photo-only share": Scope(share=self.issue(attachments=[self.photo]).share),
            "other study share": Scope(share=self.issue(study=self.bea_study).share),
        }

    def assert_agrees(self) -> None:
        for name, scope in self.scopes().items():
            for series in Series.objects.all():
                with self.subTest(scope=name, series=series.pk):
                    expected = scope.series().filter(pk=series.pk).exists()
                    self.assertEqual(scope.allows_series(series_owner(series.code)), expected)

    def test_it_agrees_with_the_querysets(self) -> None:
        self.assert_agrees()

    def test_it_agrees_when_hygienists_see_assigned_patients_only(self) -> None:
        self.practice.hygienists_see_assigned_only = True
        self.practice.save()
        self.assert_agrees()
        scope = self.scopes()["hygienist"]
        bea_series = self.bea_study.series.get()
        self.assertFalse(scope.allows_series(series_owner(bea_series.code)))

    def test_unknown_and_malformed_codes_have_no_owner(self) -> None:
        self.assertIsNone(series_owner(uuid.uuid4()))
        self.assertIsNone(series_owner("not-a-uuid"))


class WarmSliceTestCase(ShareTestCase):
    """A warm slice runs few queries and saves no session, yet sees revocation and shredding."""

    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        self.series = self.study.series.get()
        self.url = f"/viewer/series/{self.series.code}/axial/0.jpg"

    def warm(self) -> None:
        for _ in range(2):
            self.assertEqual(self.client.get(self.url).status_code, 200)

    def test_staff_warm_slice_needs_no_series_load_and_no_session_write(self) -> None:
        self.login(self.alice)
        self.warm()
        with CaptureQueriesContext(connection) as queries:
            self.assertEqual(self.client.get(self.url).status_code, 200)
        sql = [q["sql"] for q in queries.captured_queries]
        # session, user, OTP device, staff member with practice, series owner
        self.assertLessEqual(len(sql), 5, sql)
        self.assertFalse([s for s in sql if s.startswith(("UPDATE", "INSERT"))], sql)

    def test_recipient_warm_slice_reads_the_link_and_saves_no_session(self) -> None:
        self.sign_in()
        self.warm()
        with CaptureQueriesContext(connection) as queries:
            self.assertEqual(self.client.get(self.url).status_code, 200)
        sql = [q["sql"] for q in queries.captured_queries]
        self.assertTrue(any("sharing_sharelink" in s for s in sql), sql)
        self.assertLessEqual(len(sql), 3, sql)  # session, link, series owner
        self.assertFalse([s for s in sql if s.startswith(("UPDATE", "INSERT"))], sql)

    @override_settings(PORTAL_SESSION_CACHE=True)
    def test_recipient_warm_slice_is_one_database_round_trip(self) -> None:
        """With sessions read through the shared cache, the link and series come in one query."""
        self.sign_in()
        self.warm()
        with CaptureQueriesContext(connection) as queries:
            self.assertEqual(self.client.get(self.url).status_code, 200)
        sql = [q["sql"] for q in queries.captured_queries]
        self.assertEqual(len(sql), 1, sql)
        self.assertIn("sharing_sharelink", sql[0])

    @override_settings(PORTAL_SESSION_CACHE=True)
    def test_the_warm_slice_query_is_planned_once_per_connection(self) -> None:
        """PostgreSQL keeps the link-and-series statement prepared instead of planning it anew."""
        if connection.vendor != "postgresql":
            self.skipTest("PostgreSQL only: runs in .ci/run's PostgreSQL pass")
        self.sign_in()
        self.warm()
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            prepared = [row[0] for row in cursor.fetchall()]
        joins = [s for s in prepared if "sharing_sharelink" in s and "LEFT JOIN" in s]
        self.assertTrue(joins, prepared)

    @override_settings(PORTAL_SESSION_CACHE=True)
    def test_revocation_ends_the_next_cached_slice(self) -> None:
        self.sign_in()
        self.warm()
        revoke_link(self.share, by=self.alice)
        self.assertEqual(self.client.get(self.url).status_code, 404)

    def test_revocation_ends_warm_slices(self) -> None:
        self.sign_in()
        self.warm()
        revoke_link(self.share, by=self.alice)
        self.assertEqual(self.client.get(self.url).status_code, 404)

    def test_expiry_ends_warm_slices(self) -> None:
        self.sign_in()
        self.warm()
        self.share.expires_at = timezone.now() - timedelta(seconds=1)
        self.share.save()
        self.assertEqual(self.client.get(self.url).status_code, 404)

    def test_a_shredded_series_is_gone_although_its_layout_is_cached(self) -> None:
        self.login(self.alice)
        self.warm()
        self.assertIsNotNone(layouts.cached_layout(self.series.code))
        shred_study(self.study)
        self.assertEqual(self.client.get(self.url).status_code, 404)
        self.assertTrue(
            AccessEvent.objects.filter(outcome=Outcome.DENIED, detail__model="series").exists()
        )

    def test_a_role_change_applies_to_the_next_warm_slice(self) -> None:
        self.login(self.alice)
        self.warm()
        StaffMember.objects.filter(user=self.alice).update(role=Role.FRONT_DESK)
        self.assertEqual(self.client.get(self.url).status_code, 404)

    def test_other_practice_is_denied_and_audited_with_a_warm_cache(self) -> None:
        self.login(self.alice)
        self.warm()
        self.client.logout()
        self.login(self.charlie)
        self.assertEqual(self.client.get(self.url).status_code, 404)
        event = AccessEvent.objects.filter(outcome=Outcome.DENIED).latest("pk")
        self.assertEqual(event.user, self.charlie)


class MemberOfTestCase(ShareTestCase):
    def test_it_loads_member_and_practice_in_one_query_and_reuses_them(self) -> None:
        user = type(self.alice).objects.get(pk=self.alice.pk)
        with CaptureQueriesContext(connection) as queries:
            member = member_of(user)
            self.assertEqual(member.practice.name, "Smile Dental")
            self.assertIs(user.staffmember, member)
            self.assertIs(member_of(user), member)
        self.assertEqual(len(queries.captured_queries), 1)

    def test_it_returns_none_for_a_user_without_membership(self) -> None:
        user = type(self.alice).objects.create_user("nobody", "n@example.org", "x-long-pass-1")
        self.assertIsNone(member_of(user))
        self.assertIsNone(member_of(user))

    def test_it_matches_what_the_orm_loads(self) -> None:
        self.practice.front_desk_views_images = True
        self.practice.hygienists_see_assigned_only = True
        self.practice.idle_timeout_minutes = 7
        self.practice.save()
        user = type(self.bob).objects.get(pk=self.bob.pk)
        member = member_of(user)
        expected = StaffMember.objects.select_related("practice").get(user=self.bob)
        for model, got, want in [
            (StaffMember, member, expected),
            (type(self.practice), member.practice, expected.practice),
        ]:
            for field in model._meta.concrete_fields:
                with self.subTest(field=field.name):
                    self.assertEqual(getattr(got, field.attname), getattr(want, field.attname))
                    self.assertIs(
                        type(getattr(got, field.attname)), type(getattr(want, field.attname))
                    )
        self.assertFalse(member._state.adding)
        self.assertIs(member.user, user)


class FetchRowTestCase(ShareTestCase):
    def test_it_returns_what_the_orm_returns(self) -> None:
        revoke_link(self.share, by=self.alice)
        got = fetch_row(ShareLink, "code", self.share.code)
        want = ShareLink.objects.get(code=self.share.code)
        for field in ShareLink._meta.concrete_fields:
            with self.subTest(field=field.name):
                self.assertEqual(getattr(got, field.attname), getattr(want, field.attname))
                self.assertIs(type(getattr(got, field.attname)), type(getattr(want, field.attname)))
        self.assertEqual(got.practice, self.practice)  # relations still load on demand

    def test_unknown_and_malformed_values_find_nothing(self) -> None:
        self.assertIsNone(fetch_row(ShareLink, "code", uuid.uuid4()))
        self.assertIsNone(fetch_row(ShareLink, "code", "not-a-uuid"))
