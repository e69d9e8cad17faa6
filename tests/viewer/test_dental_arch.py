"""The arch found on a dental CBCT, as JSON for the panoramic view, under the slice rules."""

from __future__ import annotations

from unittest import mock

from audit.models import AccessEvent, Action, Outcome
from tests.base import make_ct_study
from tests.sharing.helpers import ShareTestCase
from tests.viewer.dental_helpers import CURVE, TINY_DENTAL, make_dental_series
from tests.viewer.helpers import make_volume_series
from viewer import arches, mpr


class DentalArchTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        arches.forget_arches()
        self.series = make_dental_series(self.study)
        self.url = f"/viewer/series/{self.series.code}/dental/arch.json"

    def test_it_finds_the_arch_and_describes_the_panoramic(self) -> None:
        self.login(self.alice)
        r = self.client.get(self.url)
        self.assertEqual(r.status_code, 200)
        self.assertIn("no-store", r["Cache-Control"])
        data = r.json()
        self.assertGreaterEqual(len(data["curve"]["points"]), 3)
        self.assertGreater(data["length_mm"], 40)
        self.assertEqual(data["geometry"]["slices"], TINY_DENTAL.slices)
        self.assertAlmostEqual(data["curve"]["occlusal_index"], TINY_DENTAL.occlusal_slice, delta=2)
        self.assertEqual(data["geometry"]["mm_per_row"], 1.0)
        first, last = data["curve"]["points"][0], data["curve"]["points"][-1]
        self.assertLess(first[0], last[0])  # the patient's right (image left) first

    def test_the_manifest_says_where_the_dental_views_are(self) -> None:
        self.login(self.alice)
        m = self.client.get(f"/viewer/series/{self.series.code}/manifest.json").json()
        self.assertEqual(m["urls"]["dental"], f"/viewer/series/{self.series.code}/dental/")

    def test_the_manifest_says_whether_the_stored_volume_shows_teeth(self) -> None:
        plain, _ = make_volume_series(self.study)
        self.login(self.alice)
        for series, teeth in ((self.series, True), (plain, False)):
            url = f"/viewer/series/{series.code}/manifest.json"
            self.assertIsNone(self.client.get(url).json()["teeth"])  # not stored yet
            self.client.get(f"/viewer/series/{series.code}/coronal/0.jpg")  # stores it
            mpr.clear_caches()
            self.assertIs(self.client.get(url).json()["teeth"], teeth)

    def test_it_is_detected_once_per_series(self) -> None:
        self.login(self.alice)
        first = self.client.get(self.url).json()
        with mock.patch.object(arches.dental, "detect_arch", side_effect=AssertionError):
            self.assertEqual(self.client.get(self.url).json(), first)

    def test_a_scan_without_teeth_says_so(self) -> None:
        plain, _ = make_volume_series(self.study)
        self.login(self.alice)
        r = self.client.get(f"/viewer/series/{plain.code}/dental/arch.json")
        self.assertEqual(r.status_code, 422)
        self.assertIn("No teeth were found", r.json()["error"])

    def test_a_verified_recipient_gets_it_and_it_is_audited_once(self) -> None:
        self.sign_in()
        self.assertEqual(self.client.get(self.url).status_code, 200)
        self.client.get(self.url)
        events = AccessEvent.objects.filter(action=Action.VIEW_SERIES, share_code=self.share.code)
        self.assertEqual(events.count(), 1)
        self.assertEqual(events.get().object_code, str(self.series.code))

    def test_it_checks_practice(self) -> None:
        self.login(self.charlie)
        self.assertEqual(self.client.get(self.url).status_code, 404)
        self.assertTrue(AccessEvent.objects.filter(outcome=Outcome.DENIED).exists())

    def test_anonymous_gets_no_bytes(self) -> None:
        r = self.client.get(self.url)
        self.assertEqual(r.status_code, 404)
        self.assertNotIn(b"points", r.content)

    def test_the_recipient_of_another_link_gets_a_404(self) -> None:
        other = self.issue(study=make_ct_study(self.pat, uid_root="1.2.826.0.1.3680043.8.498.2"))
        self.sign_in(other)
        self.assertEqual(self.client.get(self.url).status_code, 404)

    def test_it_samples_an_edited_curve(self) -> None:
        self.login(self.alice)
        url = f"/viewer/series/{self.series.code}/dental/path.json?points={CURVE}&occlusal=30"
        data = self.client.get(url).json()
        self.assertEqual(data["curve"]["occlusal_index"], 30)
        self.assertEqual(len(data["points"]), len(data["normals"]))
        self.assertAlmostEqual(len(data["points"]), data["length_mm"] + 1, delta=1.01)
