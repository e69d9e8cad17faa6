"""Legal holds: a released hold never blocks a shred, a hold covers the study it names,
and a study's identity and hold are not edited around the holds' own record."""

from __future__ import annotations

from datetime import date
from unittest import mock

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import TransactionTestCase
from django.utils import timezone

from portal.compliance import retention, rules
from portal.models import ComplianceSettings, LegalHold, Patient, Purge, RetentionPolicy, Study
from tests.base import BaseTestCase, make_ct_study

TODAY = date(2040, 1, 1)


class ReleasedHoldTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        RetentionPolicy.objects.create(practice=self.practice, name="Adults", retain_years=10)
        ComplianceSettings.objects.create(practice=self.practice, auto_purge=True)

    def test_a_study_whose_hold_was_released_is_shredded_and_the_hold_keeps_its_trace(self):
        hold = LegalHold.objects.create(
            practice=self.practice, patient=self.pat, study=self.study, reason="Audit",
            set_by=self.alice, released_at=timezone.now(), released_by=self.alice,
        )  # fmt: skip
        code = self.study.code
        report = retention.enforce(TODAY)
        self.assertEqual(report.studies, 1)
        self.assertFalse(Study.objects.filter(code=code).exists())
        hold.refresh_from_db()
        self.assertEqual((hold.study, hold.study_code, hold.reason), (None, code, "Audit"))
        self.assertFalse(rules.held(self.pat.pk))  # still released, not a patient-wide hold

    def test_one_purge_that_fails_does_not_stop_the_others(self) -> None:
        other = Patient.objects.create(practice=self.practice_b, patient_id="B-1", name="Bo Other")
        other_study = make_ct_study(other, 1, uid_root="1.2.826.0.1.3680043.8.498.7")
        RetentionPolicy.objects.create(practice=self.practice_b, name="B", retain_years=10)
        ComplianceSettings.objects.create(practice=self.practice_b, auto_purge=True)
        real = retention._carry_out

        def failing_for_practice_a(purge: Purge) -> int:
            if purge.practice_id == self.practice.pk:
                raise RuntimeError("storage is down")
            return real(purge)

        with mock.patch.object(retention, "_carry_out", failing_for_practice_a):
            with self.assertLogs("portal.compliance.retention", "ERROR") as logs:
                report = retention.enforce(TODAY)
        self.assertEqual((report.studies, report.failed), (1, 1))
        self.assertFalse(Study.objects.filter(pk=other_study.pk).exists())
        self.assertTrue(Study.objects.filter(pk=self.study.pk).exists())
        self.assertEqual(Purge.objects.get(practice=self.practice).status, "approved")
        self.assertIn("RuntimeError", logs.output[0])
        self.assertNotIn("Pat", logs.output[0])


class CancelDuringTheDailyRunTestCase(BaseTestCase):
    def test_a_purge_cancelled_after_the_run_listed_it_is_not_carried_out(self) -> None:
        RetentionPolicy.objects.create(practice=self.practice, name="Adults", retain_years=10)
        ComplianceSettings.objects.create(practice=self.practice, auto_purge=True)
        retention.propose(TODAY)
        listed = Purge.objects.get()  # as the run read it, approved
        retention.cancel([listed], by=self.alice)
        self.assertEqual(retention._execute_one(listed), -2)
        self.assertTrue(Study.objects.filter(pk=self.study.pk).exists())
        self.assertEqual(Purge.objects.get().status, "cancelled")


class HoldNamesItsPatientsStudyTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.login_back_office(self.alice)
        self.second = Patient.objects.create(
            practice=self.practice, patient_id="P-2002", name="Second Person"
        )

    def test_a_hold_cannot_name_another_patients_study(self) -> None:
        r = self.client.post(
            "/admin/portal/legalhold/add/",
            {"patient": self.second.pk, "study": self.study.pk, "reason": "Litigation"},
        )
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, "not a study of this patient")
        self.assertFalse(LegalHold.objects.exists())

    def test_a_hold_on_a_study_holds_it_whoever_it_names(self) -> None:
        # Made before the check existed: the study it names is held all the same.
        LegalHold.objects.create(
            practice=self.practice, patient=self.second, study=self.study, reason="Old"
        )
        self.assertTrue(rules.held(self.pat.pk, self.study.pk))

    def test_the_study_page_of_the_back_office_does_not_edit_identity_or_holds(self) -> None:
        self.study.legal_hold = True
        self.study.save()
        r = self.client.post(
            f"/admin/portal/study/{self.study.pk}/change/",
            {"study_date": "1990-01-01", "patient": self.second.pk, "description": "Renamed",
             "series_set-TOTAL_FORMS": "0", "series_set-INITIAL_FORMS": "0"},
        )  # fmt: skip
        self.assertEqual(r.status_code, 302)
        self.study.refresh_from_db()
        self.assertEqual(self.study.description, "Renamed")
        self.assertEqual(
            (self.study.legal_hold, self.study.study_date, self.study.patient),
            (True, date(2026, 3, 4), self.pat),
        )

    def test_a_retention_policy_keeps_records_at_least_a_year(self) -> None:
        r = self.client.post(
            "/admin/portal/retentionpolicy/add/",
            {"name": "Nothing", "count_from": "record_date", "retain_years": "0",
             "majority_age": "18", "active": "on"},
        )  # fmt: skip
        self.assertEqual(r.status_code, 200)
        self.assertFalse(RetentionPolicy.objects.exists())


class HoldAndPurgeDecisionsAreAuditedTestCase(BaseTestCase):
    """Setting or releasing a hold, and asking for, approving or cancelling a deletion, each
    leave an access event naming who did it (the back office's own log is not enough)."""

    def setUp(self) -> None:
        super().setUp()
        self.login_back_office(self.alice)

    def _events(self, action: str) -> list[tuple[str, int | None, int | None]]:
        from audit.models import AccessEvent

        return [
            (e.detail.get("phase"), e.user_id, e.patient_id)
            for e in AccessEvent.objects.filter(action=action).order_by("seq")
        ]

    def test_a_hold_set_and_released_is_in_the_access_history(self) -> None:
        self.client.post(
            "/admin/portal/legalhold/add/",
            {"patient": self.pat.pk, "study": self.study.pk, "reason": "Litigation"},
        )
        hold = LegalHold.objects.get()
        self.client.post(
            "/admin/portal/legalhold/", {"action": "release", "_selected_action": [hold.pk]}
        )
        hold.refresh_from_db()
        self.assertIsNotNone(hold.released_at)
        me, pat = self.alice.pk, self.pat.pk
        self.assertEqual(self._events("legal_hold"), [("set", me, pat), ("released", me, pat)])

    def test_an_erasure_asked_for_and_cancelled_is_in_the_access_history(self) -> None:
        self.client.post("/admin/portal/purge/add/", {"patient": self.pat.pk, "reason": "Asked"})
        purge = Purge.objects.get()
        self.client.post(
            "/admin/portal/purge/", {"action": "cancel", "_selected_action": [purge.pk]}
        )
        purge.refresh_from_db()
        self.assertEqual(purge.status, "cancelled")
        me, pat = self.alice.pk, self.pat.pk
        self.assertEqual(self._events("purge"), [("requested", me, pat), ("cancelled", me, pat)])

    def test_an_approval_is_in_the_access_history(self) -> None:
        RetentionPolicy.objects.create(practice=self.practice, name="Adults", retain_years=1)
        retention.propose(TODAY)
        purge = Purge.objects.get()
        self.client.post(
            "/admin/portal/purge/", {"action": "approve", "_selected_action": [purge.pk]}
        )
        self.assertEqual(self._events("purge"), [("approved", self.alice.pk, self.pat.pk)])


class PracticeLimitsInTheBackOfficeTestCase(BaseTestCase):
    """The back office's practice page keeps the limits the workspace settings page keeps."""

    def setUp(self) -> None:
        super().setUp()
        self.login_back_office(self.alice)

    def _post(self, **changes: str):
        form = {"name": "Smile Dental", "slug": "smile", "phone": "555-0100",
                "share_default_days": "14", "share_max_days": "30",
                "idle_timeout_minutes": "15", "time_zone": "America/New_York",
                "date_order": "mdy", "deid_dates": "remove", **changes}  # fmt: skip
        return self.client.post(f"/admin/portal/practice/{self.practice.pk}/change/", form)

    def test_link_lifetimes_and_the_idle_limit_stay_within_bounds(self) -> None:
        self.assertEqual(self._post(share_max_days="60").status_code, 302)
        self.practice.refresh_from_db()
        self.assertEqual(self.practice.share_max_days, 60)
        bad = [("share_max_days", "32000"), ("share_max_days", "0"),
               ("idle_timeout_minutes", "720"), ("idle_timeout_minutes", "0"),
               ("idle_timeout_minutes", "30")]  # fmt: skip
        for field, value in bad:
            r = self._post(**{field: value, "share_default_days": "1"})
            self.assertEqual(r.status_code, 200, f"{field}={value}")
        self.practice.refresh_from_db()
        limits = (self.practice.share_max_days, self.practice.idle_timeout_minutes)
        self.assertEqual(limits, (60, 15))

    def test_a_practice_admin_cannot_rename_the_practices_slug(self) -> None:
        # Staff sign in as <slug>.<name>; "OTHER" would also collide with practice B's "other".
        self.assertEqual(self._post(slug="OTHER", phone="555-0199").status_code, 302)
        self.practice.refresh_from_db()
        self.assertEqual(self.practice.slug, "smile")


class StudyHoldFlagMigrationTestCase(TransactionTestCase):
    """A study flagged as held before holds were recorded becomes a legal hold on migrating."""

    def test_a_flagged_study_is_held_by_a_recorded_hold_afterwards(self) -> None:
        executor = MigrationExecutor(connection)
        before = [("portal", "0015_legal_hold_study_code_retention_floor")]
        after = [("portal", "0016_study_hold_flags_become_legal_holds")]
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        practice = old.get_model("portal", "Practice").objects.create(slug="p", name="P")
        patient = old.get_model("portal", "Patient").objects.create(
            practice=practice, patient_id="P-1", name="Pat"
        )
        study = old.get_model("portal", "Study").objects.create(
            practice=practice, patient=patient, study_uid="1.2.3", legal_hold=True
        )
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        executor.loader.build_graph()
        hold = LegalHold.objects.get()
        found = (hold.study_id, hold.patient_id, hold.released_at)
        self.assertEqual(found, (study.pk, patient.pk, None))
        self.assertFalse(Study.objects.get(pk=study.pk).legal_hold)
        self.assertTrue(rules.held(patient.pk, study.pk))
        latest = MigrationExecutor(connection)
        latest.migrate(latest.loader.graph.leaf_nodes())
