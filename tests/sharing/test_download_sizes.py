"""The sizes the recipient's page shows for each download are about what arrives."""

from __future__ import annotations

from sharing import sizes
from sharing.models import ShareLink
from tests.sharing.helpers import ShareTestCase
from tests.viewer.helpers import make_dental_series


class DownloadSizesTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.series = make_dental_series(self.practice, self.alice)
        issued = self.issue(study=self.series.study, recipient_kind=ShareLink.Recipient.PATIENT)
        self.open_link(issued)
        r = self.verify(birth_date="1980-01-01")
        self.assertEqual(r.status_code, 303)
        self.expected = sizes.series_sizes([self.series.pk])[self.series.pk]

    def size_of(self, url: str) -> int:
        r = self.client.get(url)
        self.assertEqual(r.status_code, 200, url)
        return sum(len(part) for part in r.streaming_content)

    def test_the_original_files_size_is_within_two_percent(self) -> None:
        got = self.size_of(f"/s/download/series/{self.series.code}.zip")
        self.assertLess(abs(got / self.expected.original - 1), 0.02, (got, self.expected))

    def test_the_pictures_sizes_are_about_right(self) -> None:
        """An estimate (pictures are drawn on request), but never off by half or double."""
        base = f"/s/download/series/{self.series.code}/pictures.zip?format="
        for fmt in ("jpeg", "png"):
            with self.subTest(fmt):
                got = self.size_of(base + fmt)
                ratio = got / getattr(self.expected, fmt)
                self.assertTrue(0.67 < ratio < 1.5, (fmt, got, self.expected, ratio))
