"""The access history in the back office: read-only, filtered, exported (audited), timelines."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from django.test import RequestFactory

import audit
from audit.models import AccessEvent, Action
from portal.models import Patient
from sharing.services import issue_link
from tests.base import BaseTestCase


class HistoryTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice.is_staff = True
        self.alice.save()
        self.share = issue_link(
            study=self.study, created_by=self.alice, recipient_kind="patient"
        ).share
        request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.4", HTTP_USER_AGENT="=cmd|x")
        audit.record(Action.SHARE_OPEN, request=request, share=self.share)
        audit.record(Action.VIEW_STUDY, user=self.bob, patient=self.pat, practice=self.practice)
        self.other = Patient.objects.create(
            practice=self.practice_b, patient_id="B-1", name="Bea Other"
        )
        audit.record(
            Action.VIEW_STUDY, user=self.charlie, patient=self.other, practice=self.practice_b
        )

    def _count(self, query: str) -> int:
        r = self.client.get(f"/admin/audit/accessevent/?{query}")
        self.assertEqual(r.status_code, 200)
        return r.context["cl"].result_count

    @pytest.mark.hipaa("164.312(b)")
    def test_it_filters_by_action_staff_link_patient_and_dates(self) -> None:
        self.login(self.alice)
        self.assertEqual(self._count("action__exact=share_open"), 1)
        self.assertEqual(self._count(f"staff={self.bob.pk}"), 1)  # viewed
        self.assertEqual(self._count(f"staff={self.alice.pk}&action__exact=share_issue"), 1)
        self.assertEqual(self._count(f"share_code={self.share.code}"), 2)
        r = self.client.get(f"/admin/audit/accessevent/?patient__code={self.pat.code}")
        self.assertEqual({e.patient_id for e in r.context["cl"].result_list}, {self.pat.pk})
        today = date.today().isoformat()
        self.assertEqual(self._count(f"created_at__date__lte={today}&action__exact=view_study"), 1)
        self.assertEqual(self._count("created_at__date__gte=2999-01-01"), 0)
        r = self.client.get(
            "/admin/audit/accessevent/?created_at__date__gte=2020-01-01&created_at__date__lte="
        )
        self.assertRedirects(r, "/admin/audit/accessevent/?created_at__date__gte=2020-01-01")

    def test_a_malformed_filter_is_a_clear_answer_not_an_error(self) -> None:
        # These answered 500 (int() of the staff filter; the export's lookup errors).
        self.login(self.alice)
        base = "/admin/audit/accessevent/"
        for query in ("staff=abc", "staff=99999999999999999999999", "staff=%C2%B2"):
            with self.subTest(query=query):
                r = self.client.get(f"{base}?{query}")
                self.assertRedirects(r, f"{base}?e=1", fetch_redirect_response=False)
        for query in ("share_code=zzz", "created_at__date__gte=notadate", "staff=abc"):
            with self.subTest(export=query):
                r = self.client.get(f"{base}export/?{query}")
                self.assertContains(r, "filter", status_code=400)

    def test_a_practice_admin_sees_only_their_practice(self) -> None:
        self.login(self.alice)
        r = self.client.get("/admin/audit/accessevent/")
        self.assertNotContains(r, "Bea Other")
        r = self.client.get(f"/admin/audit/accessevent/timeline/patient/{self.other.code}/")
        self.assertEqual(r.status_code, 404)

    def test_nobody_edits_or_deletes_not_even_a_superuser(self) -> None:
        self.alice.is_superuser = True
        self.alice.save()
        self.login(self.alice)
        event = AccessEvent.objects.first()
        r = self.client.get("/admin/audit/accessevent/")
        self.assertNotContains(r, "/admin/audit/accessevent/add/")
        self.assertNotContains(r, "delete_selected")
        for url in (f"{event.pk}/change/", f"{event.pk}/delete/", "add/"):
            with self.subTest(url=url):
                r = self.client.post(f"/admin/audit/accessevent/{url}", {"outcome": "ok"})
                self.assertIn(r.status_code, (302, 403))
        self.assertEqual(AccessEvent.objects.filter(pk=event.pk).count(), 1)

    @pytest.mark.hipaa("164.312(b)")
    def test_the_csv_export_follows_the_filters_and_is_audited(self) -> None:
        self.login(self.alice)
        r = self.client.get(f"/admin/audit/accessevent/export/?share_code={self.share.code}")
        self.assertEqual(r["Content-Type"], "text/csv")
        rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
        self.assertEqual(len(rows), 3)  # header, issued, opened
        self.assertEqual(rows[2][rows[0].index("user agent")], "'=cmd|x")
        export = AccessEvent.objects.filter(action=Action.EXPORT, patient=self.pat).get()
        self.assertEqual((export.user, export.detail["rows"]), (self.alice, 2))

    def test_an_export_without_patients_is_in_the_practices_own_history(self) -> None:
        self.login(self.alice)
        r = self.client.get("/admin/audit/accessevent/export/?action__exact=sign_in")
        b"".join(r.streaming_content)
        export = AccessEvent.objects.get(action=Action.EXPORT, patient=None)
        self.assertEqual((export.user, export.practice), (self.alice, self.practice))
        r = self.client.get("/admin/audit/accessevent/?action__exact=export")
        self.assertEqual(r.context["cl"].result_count, 1)

    def test_the_timelines_list_events_in_order_and_record_the_read(self) -> None:
        self.login(self.alice)
        r = self.client.get(f"/admin/audit/accessevent/timeline/link/{self.share.code}/")
        self.assertEqual(r.status_code, 200)
        self.assertEqual([e.action for e in r.context["events"]], ["share_issue", "share_open"])
        r = self.client.get(f"/admin/audit/accessevent/timeline/patient/{self.pat.code}/")
        self.assertContains(r, "198.51.100.4")
        reads = AccessEvent.objects.filter(action=Action.ADMIN_VIEW, detail__page="timeline")
        self.assertEqual(reads.filter(patient=self.pat).count(), 2)
