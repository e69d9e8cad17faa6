"""A link to chosen items shows only what is left of them: never the whole study.

A link to one report was "the whole study" once retention shredded that report (an empty
choice meant the whole study): the recipient opened every series, the DICOM headers and the
originals of a study nobody had shared.
"""

from __future__ import annotations

import re

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import TransactionTestCase
from django.utils import timezone

from portal.access import share_facts
from portal.compliance.retention import shred_attachment
from sharing.models import ShareLink
from tests.sharing.helpers import ShareTestCase, add_attachments


class ScopeAfterDeletionTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.photo, self.pdf = add_attachments(self.study)
        self.issued = self.issue(attachments=[self.pdf])
        self.series = self.study.series.get()

    def test_a_link_to_a_shredded_report_shows_nothing_of_the_study(self) -> None:
        self.sign_in()
        slice_url = f"/viewer/series/{self.series.code}/axial/0.jpg"
        self.assertEqual(self.client.get(slice_url).status_code, 404)
        shred_attachment(self.pdf)
        share_facts.__globals__["_share_facts"].clear()  # as a freshly started web process
        for url in (
            slice_url,
            f"/viewer/series/{self.series.code}/manifest.json",
            f"/s/download/series/{self.series.code}.zip",
            f"/s/download/instances/{self.series.instances.first().code}",
            f"/viewer/attachments/{self.photo.code}/file",
        ):
            with self.subTest(url=url):
                self.assertEqual(self.client.get(url).status_code, 404)

    def test_staff_see_that_the_chosen_items_are_gone_not_a_whole_study(self) -> None:
        shred_attachment(self.pdf)
        self.login(self.bob)
        rows = re.findall(
            r'<tr class="share-row".*?</tr>', self.client.get("/shares/").content.decode(), re.S
        )
        chosen = next(row for row in rows if str(self.issued.share.code) in row)
        self.assertIn("Chosen items, since deleted", chosen)
        self.assertNotIn("Whole study", chosen)

    def test_the_whole_study_is_a_choice_made_when_the_link_is_issued(self) -> None:
        self.assertTrue(ShareLink.objects.get(pk=self.share.pk).whole_study)
        self.assertFalse(ShareLink.objects.get(pk=self.issued.share.pk).whole_study)
        chosen = self.issue(series=[self.series]).share
        self.assertFalse(ShareLink.objects.get(pk=chosen.pk).whole_study)


class WholeStudyMigrationTestCase(TransactionTestCase):
    """Links issued before the choice was recorded keep their choice on migrating."""

    def test_a_link_with_chosen_items_is_not_the_whole_study_afterwards(self) -> None:
        executor = MigrationExecutor(connection)
        before = [("sharing", "0007_deidentified_share")]
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        practice = old.get_model("portal", "Practice").objects.create(slug="p", name="P")
        patient = old.get_model("portal", "Patient").objects.create(
            practice=practice, patient_id="P-1", name="Pat"
        )
        study = old.get_model("portal", "Study").objects.create(
            practice=practice, patient=patient, study_uid="1.2.3"
        )
        series = old.get_model("portal", "Series").objects.create(
            study=study, series_uid="1.2.3.1", modality="CT"
        )
        user = old.get_model("auth", "User").objects.create(username="alice")
        Link = old.get_model("sharing", "ShareLink")
        made = {}
        for name in ("whole", "chosen"):
            made[name] = Link.objects.create(
                practice=practice, patient=patient, study=study, recipient_kind="patient",
                token_hash=name, password_hash="x", expires_at=timezone.now(), created_by=user,
            )  # fmt: skip
        made["chosen"].series.set([series])
        executor = MigrationExecutor(connection)
        executor.migrate([("sharing", "0008_share_whole_study")])
        self.assertTrue(ShareLink.objects.get(pk=made["whole"].pk).whole_study)
        self.assertFalse(ShareLink.objects.get(pk=made["chosen"].pk).whole_study)
        latest = MigrationExecutor(connection)
        latest.migrate(latest.loader.graph.leaf_nodes())


class LostChoiceMigrationTestCase(TransactionTestCase):
    """A link whose chosen items were all shredded before the choice was recorded cannot be
    told from a whole-study link by its rows; the access history can: such a link grants
    nothing rather than the whole study."""

    def test_a_link_emptied_by_a_shredded_attachment_is_not_the_whole_study(self) -> None:
        executor = MigrationExecutor(connection)
        before = [
            ("sharing", "0008_share_whole_study"),
            ("audit", "0009_legal_hold_and_purge_actions"),
        ]
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        practice = old.get_model("portal", "Practice").objects.create(slug="p", name="P")
        Patient = old.get_model("portal", "Patient")
        Study = old.get_model("portal", "Study")
        user = old.get_model("auth", "User").objects.create(username="alice")
        Link = old.get_model("sharing", "ShareLink")
        Event = old.get_model("audit", "AccessEvent")
        made = {}
        for n, name in enumerate(("emptied", "untouched", "shred_before", "other_patient")):
            patient = Patient.objects.create(practice=practice, patient_id=f"P-{n}", name="Pat")
            study = Study.objects.create(practice=practice, patient=patient, study_uid=f"1.{n}")
            made[name] = Link.objects.create(
                practice=practice, patient=patient, study=study, recipient_kind="patient",
                token_hash=name, password_hash="x", expires_at=timezone.now(), created_by=user,
            )  # fmt: skip
        issued = made["emptied"].created_at

        def shred(patient_id: int, at) -> None:  # noqa: ANN001
            seq = Event.objects.count() + 1
            Event.objects.create(
                seq=seq, created_at=at, action="shred", practice=practice,
                patient_id=patient_id, object_type="attachment", object_code="x",
                prev_hash="0", hash=f"{seq}",
            )  # fmt: skip

        later = issued + timezone.timedelta(days=3)
        shred(made["emptied"].patient_id, later)
        shred(
            made["shred_before"].patient_id,
            made["shred_before"].created_at - timezone.timedelta(days=1),
        )
        shred(made["other_patient"].patient_id + 1000, later)
        executor = MigrationExecutor(connection)
        executor.migrate([("sharing", "0009_links_that_lost_their_choice")])
        whole = {name: ShareLink.objects.get(pk=link.pk).whole_study for name, link in made.items()}
        self.assertEqual(
            whole,
            {"emptied": False, "untouched": True, "shred_before": True, "other_patient": True},
        )
        latest = MigrationExecutor(connection)
        latest.migrate(latest.loader.graph.leaf_nodes())
