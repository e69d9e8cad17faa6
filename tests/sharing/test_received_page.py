"""The received page: a study sent through an upload link is one item, decided as a whole.

A CBCT sent by another practice is hundreds of files; one checkbox per slice made the page a
wall of checkboxes and a decision a chore. Staff tick what they accept or decline; nothing
ticked decides nothing.
"""

from __future__ import annotations

import io
from unittest import mock

from portal import vault
from sharing.models import ReceivedFile
from sharing.uploads import intake
from tests.base import BaseTestCase
from tests.portal.ingest_helpers import pdf_bytes
from tests.sharing.upload_helpers import UploadLinkMixin, scans


class ReceivedPageTestCase(UploadLinkMixin, BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.verify()
        first, second, third = scans()
        self.send(("IM1.dcm", first), ("IM2.dcm", second), ("IM3.dcm", third),
                  ("report.pdf", pdf_bytes()))  # fmt: skip
        self.login(self.bob)
        self.study_uid = ReceivedFile.objects.get(name="IM1.dcm").study_uid
        self.study_item = f"study:{self.study_uid}:{ReceivedFile.objects.get(name='IM3.dcm').pk}"
        self.accept = f"/received/links/{self.link.code}/accept/"

    def states(self) -> dict[str, str]:
        return dict(ReceivedFile.objects.values_list("name", "state"))

    def test_a_study_of_several_files_is_one_item(self) -> None:
        page = self.client.get("/received/")
        self.assertContains(page, 'name="file"', count=2)
        self.assertContains(page, f'value="{self.study_item}"', count=1)
        self.assertContains(page, "CBCT from Dr Other")
        self.assertContains(page, "DICOM study · 3 files")
        self.assertContains(page, "report.pdf")
        self.assertContains(page, "4 files")  # the link's heading counts every file

    def test_only_the_ticked_item_is_accepted(self) -> None:
        report = ReceivedFile.objects.get(name="report.pdf")
        self.client.post(self.accept, {"choosing": "1", "file": [str(report.pk)]})
        self.assertEqual(
            self.states(),
            {"IM1.dcm": "pending", "IM2.dcm": "pending", "IM3.dcm": "pending",
             "report.pdf": "accepted"},
        )  # fmt: skip
        self.client.post(self.accept, {"choosing": "1", "file": [self.study_item]})
        self.assertEqual(set(self.states().values()), {"accepted"})

    def test_a_tick_from_an_older_page_decides_nothing_and_says_so(self) -> None:
        r = self.client.post(
            self.accept, {"choosing": "1", "file": [f"study:{self.study_uid}"]}, follow=True
        )
        self.assertContains(r, "no longer waiting: look at the list again")
        self.assertEqual(set(self.states().values()), {"pending"})

    def test_nothing_ticked_decides_nothing(self) -> None:
        for action in ("accept", "decline"):
            with self.subTest(action=action):
                r = self.client.post(
                    f"/received/links/{self.link.code}/{action}/", {"choosing": "1"}, follow=True
                )
                self.assertContains(r, "Tick the files to accept or decline first.")
                self.assertEqual(set(self.states().values()), {"pending"})

    def test_a_study_item_decides_only_the_files_that_were_on_the_page(self) -> None:
        # A big study comes in several sends: slices arriving after the page was drawn are
        # not declined (shredded) with the ones staff saw.
        late = ReceivedFile.objects.create(
            link=self.link, name="IM4.dcm", kind="dicom", size=10, study_uid=self.study_uid
        )
        decline = f"/received/links/{self.link.code}/decline/"
        self.client.post(decline, {"choosing": "1", "file": [self.study_item]})
        states = self.states()
        self.assertEqual(states["IM4.dcm"], "pending")
        self.assertEqual({states[f"IM{n}.dcm"] for n in (1, 2, 3)}, {"declined"})
        self.assertEqual(ReceivedFile.objects.get(pk=late.pk).state, "pending")


class RecordedSendTestCase(UploadLinkMixin, BaseTestCase):
    def test_a_failure_after_the_send_was_recorded_undoes_nothing_of_it(self) -> None:
        # receive() undoes a send that failed (its files shredded, its charge given back):
        # once recorded, the rows own them, whatever fails afterwards.
        report = pdf_bytes()
        files = [("report.pdf", io.BytesIO(report))]
        with mock.patch.object(intake, "discard", side_effect=[RuntimeError("disk"), None]):
            with self.assertRaises(RuntimeError):
                intake.receive(self.link, files)
        kept = ReceivedFile.objects.get(name="report.pdf")
        self.assertEqual(kept.state, "pending")
        self.assertEqual(vault.read_bytes(kept.blob), report)
        self.link.refresh_from_db()
        self.assertEqual(self.link.received_bytes, len(report))
