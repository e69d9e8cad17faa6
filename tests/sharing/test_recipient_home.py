"""The recipient's page says what each download is for and how big it is, in the practice's time."""

from __future__ import annotations

import io
import re
import zipfile
from zoneinfo import ZoneInfo

from django.utils import timezone

from tests.sharing.helpers import ShareTestCase, add_attachments


def body(response) -> bytes:
    return b"".join(response.streaming_content)


class RecipientHomeTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.photo, self.pdf = add_attachments(self.study)
        self.sign_in()

    def test_each_download_says_what_it_is_for_and_its_size(self) -> None:
        r = self.client.get("/s/home/")
        self.assertContains(r, "Pictures to look at")
        self.assertContains(r, "Original files for your dentist's software")
        self.assertRegex(r.content.decode(), r"Download original files <span class=\"size\">"
                         r"\(ZIP, [0-9.]+\xa0KB\)")  # fmt: skip
        self.assertRegex(r.content.decode(), r"Download pictures <span class=\"size\">"
                         r"\(ZIP, about [0-9.]+\xa0(bytes|KB)\)")  # fmt: skip

    def test_pictures_come_first_for_a_patient(self) -> None:
        page = self.client.get("/s/home/").content.decode()
        self.assertLess(page.index('id="download-pictures"'), page.index('id="download-originals"'))

    def test_times_are_in_the_practices_time_zone(self) -> None:
        self.practice.time_zone = "America/New_York"
        self.practice.save()
        local = timezone.localtime(self.share.expires_at, ZoneInfo("America/New_York"))
        r = self.client.get("/s/home/")
        self.assertContains(r, local.strftime("%H:%M"))
        self.assertRegex(r.content.decode(), r"\((EST|EDT)\)")

    def test_download_links_are_tap_sized(self) -> None:
        page = self.client.get("/s/home/").content.decode()
        links = re.findall(r'<a class="([^"]*)" href="/s/download/[^"]+"', page)
        self.assertTrue(links)
        self.assertTrue(all(c in ("tap", "button", "button secondary") for c in links), links)
        css = open("static/sharing/sharing.css").read()
        rule = re.search(r"^a\.tap \{([^}]*)\}", css, re.M)[1]
        self.assertIn("min-height:44px", rule)

    def test_names_come_from_the_practice_the_study_and_its_date(self) -> None:
        series = self.study.series.get()
        for url, name in [
            ("/s/download/share.zip", "smile-dental-cbct-maxilla-2026-03-04-original-files.zip"),
            ("/s/download/pictures.zip", "smile-dental-cbct-maxilla-2026-03-04-pictures.zip"),
            (f"/s/download/series/{series.code}.zip",
             "smile-dental-cbct-maxilla-2026-03-04-series-1-original-files.zip"),
        ]:  # fmt: skip
            with self.subTest(url=url):
                r = self.client.get(url)
                self.assertEqual(r["Content-Disposition"], f'attachment; filename="{name}"')
                body(r)

    def test_the_pictures_zip_holds_the_reports_and_photos(self) -> None:
        zf = zipfile.ZipFile(io.BytesIO(body(self.client.get("/s/download/pictures.zip"))))
        names = zf.namelist()
        self.assertTrue(any(n.startswith("Photos/") for n in names), names)
        self.assertTrue(any(n.startswith("Documents/") and n.endswith(".pdf") for n in names))

    def test_a_used_up_link_offers_to_ask_for_a_new_one(self) -> None:
        self.share.max_downloads = 1
        self.share.download_count = 1
        self.share.save()
        r = self.client.get("/s/home/")
        self.assertContains(r, 'action="/s/request/"')
        self.assertNotContains(r, 'href="/s/download/share.zip"')


class ClosedPageTestCase(ShareTestCase):
    def test_the_closed_page_speaks_of_the_paper_handout_too(self) -> None:
        self.sign_in()
        r = self.client.post("/s/end/")
        self.assertContains(r, "on the paper from the practice")
