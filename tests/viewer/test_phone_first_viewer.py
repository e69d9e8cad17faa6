"""The viewer page: the practice's name, a way back, simple tools for patients, dental presets,
and a DICOM tag panel read on the server through the access layer."""

from __future__ import annotations

from audit.models import AccessEvent, Action
from tests.sharing.helpers import ShareTestCase
from tests.viewer.helpers import make_pdf, make_volume_series
from viewer import mpr


class ViewerPageTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.url = f"/viewer/studies/{self.study.code}/"

    def test_a_patient_gets_the_practices_name_a_way_back_and_the_simple_tools(self) -> None:
        self.sign_in()
        r = self.client.get(self.url)
        self.assertContains(r, '<span class="brand">Smile Dental</span>')
        self.assertNotContains(r, "Image Portal")
        self.assertContains(r, '<a class="back" href="/s/home/">')
        self.assertContains(r, 'data-mode="simple"')
        self.assertContains(r, 'id="drawer"')
        self.assertContains(r, 'class="scrubber series-only"')
        self.assertContains(r, 'data-sign-in="/s/" data-signed-in-as="share"')

    def test_staff_get_the_full_tools_and_a_way_back_to_the_study(self) -> None:
        self.login(self.alice)
        r = self.client.get(self.url)
        self.assertContains(r, 'data-mode="full"')
        self.assertContains(r, f'<a class="back" href="/studies/{self.study.code}/">')
        # A staff member whose sign-in ended signs in again and comes back here.
        self.assertContains(r, f'data-sign-in="/login/?next=/viewer/studies/{self.study.code}/"')
        self.assertContains(r, 'data-signed-in-as="staff"')

    def test_tools_that_do_not_apply_to_a_report_are_marked(self) -> None:
        make_pdf(self.study)
        self.login(self.alice)
        page = self.client.get(self.url).content.decode()
        marked = ['data-tool="scroll" class="active series-only"', 'id="preset" class="series-only',
                  'data-tool="length" class="full-only image-only"']  # fmt: skip
        for tool in marked:
            self.assertIn(tool, page)
        css = open("viewer/static/viewer/viewer.css").read()
        self.assertIn(
            '.viewer[data-kind="pdf"] .series-only, .viewer[data-kind="pdf"] .image-only', css
        )


class DentalPresetsTestCase(ShareTestCase):
    def test_a_ct_offers_presets_named_for_dental_use(self) -> None:
        mpr.clear_caches()
        volume, _ = make_volume_series(self.study)
        self.login(self.alice)
        m = self.client.get(f"/viewer/series/{volume.code}/manifest.json").json()
        simple = [p["name"] for p in m["presets"] if p.get("simple")]
        self.assertEqual(simple, ["Teeth", "Bone", "Soft tissue"])
        self.assertNotIn("Lung", simple)


class SeriesTagsTestCase(ShareTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.series = self.study.series.get()
        self.url = f"/viewer/series/{self.series.code}/tags/0.json"

    def test_it_lists_the_current_images_tags_and_audits_the_read(self) -> None:
        self.login(self.alice)
        r = self.client.get(self.url)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r["Cache-Control"], "no-store, private")
        rows = {row["name"]: row for row in r.json()["rows"]}
        self.assertEqual(rows["Patient's Name"]["value"], "Pat^Example")
        self.assertEqual(rows["Pixel Spacing"]["tag"], "(0028,0030)")
        self.assertNotIn("Pixel Data", rows)
        self.assertEqual(rows["Transfer Syntax UID"]["vr"], "UI")
        event = AccessEvent.objects.get(action=Action.VIEW_SERIES, detail__tags=0)
        self.assertEqual(event.user, self.alice)

    def test_a_recipient_reads_them_through_the_share(self) -> None:
        self.sign_in()
        self.assertEqual(self.client.get(self.url).status_code, 200)
        self.assertTrue(AccessEvent.objects.filter(share_code=self.share.code, detail__tags=0))

    def test_another_practice_and_strangers_get_404(self) -> None:
        self.login(self.charlie)
        self.assertEqual(self.client.get(self.url).status_code, 404)
        self.client.logout()
        self.assertEqual(self.client.get(self.url).status_code, 404)
        self.assertTrue(AccessEvent.objects.filter(action=Action.ACCESS_DENIED).exists())

    def test_an_index_outside_the_series_is_404(self) -> None:
        self.login(self.alice)
        self.assertEqual(
            self.client.get(f"/viewer/series/{self.series.code}/tags/99.json").status_code, 404
        )
