"""Search: name (partial, case and accent insensitive), ID, dates, modality; scoped; audited."""

from __future__ import annotations

import re
from datetime import date

from audit.models import AccessEvent, Action
from portal.models import Patient, Role
from tests.base import BaseTestCase, make_ct_study, make_staff


class SearchTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.zoe = Patient.objects.create(
            practice=self.practice, patient_id="P-2002", name="Zoë Ångström"
        )
        make_ct_study(self.zoe, n=1, uid_root="1.2.826.0.1.3680043.8.498.2")

    def test_it_finds_by_partial_name_ignoring_case_and_accents(self) -> None:
        self.login(self.bob)
        for q in ["zoe", "ANGSTR", "ngstr", "Zoë"]:
            with self.subTest(q=q):
                r = self.client.post("/", {"q": q})
                self.assertContains(r, "Zoë Ångström")
                self.assertNotContains(r, "Pat Example")

    def test_it_finds_by_patient_id_and_birth_date(self) -> None:
        self.login(self.bob)
        self.assertContains(self.client.post("/", {"q": "p-1001"}), "Pat Example")
        r = self.client.post("/", {"birth_date": "1980-05-17"})
        self.assertContains(r, "Pat Example")
        self.assertNotContains(r, "Zoë")

    def test_it_filters_by_date_range_and_modality(self) -> None:
        self.login(self.bob)
        r = self.client.post("/", {"date_from": "2026-03-05"})
        self.assertContains(r, "0 results")
        r = self.client.post(
            "/", {"date_from": "2026-03-01", "date_to": "2026-03-31", "modality": "CT"}
        )
        self.assertContains(r, "2 results")
        self.assertContains(self.client.post("/", {"modality": "PX"}), "0 results")

    def test_it_refuses_a_reversed_date_range(self) -> None:
        self.login(self.bob)
        r = self.client.post("/", {"date_from": "2026-03-31", "date_to": "2026-03-01"})
        self.assertContains(r, "ends before it starts", status_code=400)

    def test_it_never_shows_another_practice(self) -> None:
        self.login(self.charlie)
        r = self.client.post("/", {"q": "pat"})
        self.assertContains(r, "0 results")

    def test_it_paginates(self) -> None:
        for i in range(21):
            p = Patient.objects.create(practice=self.practice, patient_id=f"X{i}", name=f"Pat {i}")
            p.studies.create(
                practice=self.practice, study_uid=f"9.9.{i}", study_date=date(2026, 1, 1)
            )
        self.login(self.bob)
        r = self.client.post("/", {"q": "pat"})
        self.assertContains(r, "Page 1 of 2")
        self.assertContains(self.client.post("/", {"q": "pat", "page": 2}), "Page 2 of 2")

    def test_it_audits_fields_not_values(self) -> None:
        self.login(self.bob)
        self.client.post("/", {"q": "zoe", "modality": "CT"})
        event = AccessEvent.objects.get(action=Action.SEARCH)
        self.assertEqual(event.detail["fields"], ["modality", "q"])
        self.assertNotIn("zoe", str(event.detail))

    def test_it_shows_thumbnails_only_to_roles_that_see_pixels(self) -> None:
        self.login(self.alice)
        self.assertContains(self.client.post("/", {"q": "pat"}), "/thumbnail.jpg")
        self.login(self.bob)
        self.assertNotContains(self.client.post("/", {"q": "pat"}), "/thumbnail.jpg")

    def test_it_shows_hygienists_only_assigned_patients(self) -> None:
        hy = make_staff("hy", self.practice, Role.HYGIENIST)
        self.practice.hygienists_see_assigned_only = True
        self.practice.save()
        self.zoe.assigned_staff.add(hy)
        self.login(hy)
        r = self.client.post("/", {"q": "e"})
        self.assertContains(r, "Zoë")
        self.assertNotContains(r, "Pat Example")

    def test_it_redirects_anonymous(self) -> None:
        r = self.client.post("/", {"q": "pat"})
        self.assertRedirects(r, "/login/?next=/", fetch_redirect_response=False)

    def test_it_keeps_names_and_birth_dates_out_of_urls(self) -> None:
        for i in range(21):
            p = Patient.objects.create(practice=self.practice, patient_id=f"X{i}", name=f"Pat {i}")
            p.studies.create(
                practice=self.practice, study_uid=f"9.9.{i}", study_date=date(2026, 1, 1)
            )
        self.login(self.bob)
        r = self.client.post("/", {"q": "Pat", "date_from": "2025-12-31"})
        html = r.content.decode()
        self.assertIn("Page 1 of 2", html)
        # The search form and the pager post; no link or action carries the criteria.
        self.assertEqual(re.findall(r'<form method="get"', html), [])
        addresses = re.findall(r'(?:href|action)="([^"]*)"', html)
        self.assertEqual([u for u in addresses if "?" in u], [])
        self.assertIn('<input type="hidden" name="q" value="Pat">', html)
        self.assertIn('<input type="hidden" name="date_from" value="2025-12-31">', html)
        r = self.client.post("/", {"q": "Pat", "date_from": "2025-12-31", "page": "2"})
        self.assertContains(r, "Page 2 of 2")

    def test_it_refuses_other_methods(self) -> None:
        self.login(self.bob)
        self.assertEqual(self.client.put("/").status_code, 405)
