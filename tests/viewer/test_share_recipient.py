from __future__ import annotations

from django.utils import timezone

from audit.models import AccessEvent, Action
from sharing import session as share_session
from sharing.models import ShareLink
from sharing.services import issue_link, revoke_link
from tests.base import BaseTestCase
from tests.viewer.helpers import make_photo, make_volume_series
from viewer import mpr


class ShareRecipientTestCase(BaseTestCase):
    """The same viewer serves a verified share recipient, limited to the share's scope."""

    def setUp(self) -> None:
        super().setUp()
        mpr.clear_caches()
        self.series = self.study.series.get()
        self.volume, _ = make_volume_series(self.study)
        self.photo = make_photo(self.study)

    def _open(self, **kwargs) -> ShareLink:
        share = issue_link(
            study=self.study,
            created_by=self.alice,
            recipient_kind=ShareLink.Recipient.PATIENT,
            **kwargs,
        ).share
        session = self.client.session
        now = timezone.now().timestamp()
        session[share_session.SESSION_KEY] = str(share.code)
        session[share_session.VERIFIED_KEY] = now
        session[share_session.SEEN_KEY] = now
        session.save()
        return share

    def test_it_shows_the_shared_study(self) -> None:
        share = self._open()
        r = self.client.get(f"/viewer/studies/{self.study.code}/")
        self.assertEqual(r.status_code, 200)
        self.assertContains(r, "Pat Example")
        r = self.client.get(f"/viewer/series/{self.volume.code}/coronal/3.jpg")
        self.assertEqual(r.status_code, 200)
        event = AccessEvent.objects.get(action=Action.VIEW_SERIES)
        self.assertEqual(event.share_code, share.code)

    def test_it_404s_series_outside_a_partial_share(self) -> None:
        self._open(series=[self.volume])
        ok = self.client.get(f"/viewer/series/{self.volume.code}/manifest.json")
        self.assertEqual(ok.status_code, 200)
        for url in (
            f"/viewer/series/{self.series.code}/manifest.json",
            f"/viewer/series/{self.series.code}/axial/0.jpg",
            f"/viewer/attachments/{self.photo.code}/file",
        ):
            with self.subTest(url=url):
                self.assertEqual(self.client.get(url).status_code, 404)

    def test_it_404s_another_patients_study(self) -> None:
        self._open()
        from tests.base import make_ct_study

        other = make_ct_study(self.pat, uid_root="1.2.826.0.1.3680043.8.498.2")
        r = self.client.get(f"/viewer/studies/{other.code}/")
        self.assertEqual(r.status_code, 404)

    def test_it_stops_serving_after_revocation(self) -> None:
        share = self._open()
        url = f"/viewer/series/{self.volume.code}/axial/1.jpg"
        self.assertEqual(self.client.get(url).status_code, 200)
        revoke_link(share, by=self.alice)
        self.assertEqual(self.client.get(url).status_code, 404)

    def test_a_second_link_in_the_same_browser_is_audited_afresh(self) -> None:
        """Views through link B are recorded even after link A saw the same series."""
        url = f"/viewer/series/{self.volume.code}/axial/1.jpg"
        first = self._open()
        self.assertEqual(self.client.get(url).status_code, 200)
        self.assertEqual(self.client.get(url).status_code, 200)
        second = self._open()
        self.assertEqual(self.client.get(url).status_code, 200)
        codes = list(
            AccessEvent.objects.filter(action=Action.VIEW_SERIES)
            .order_by("pk")
            .values_list("share_code", flat=True)
        )
        self.assertEqual(codes, [first.code, second.code])
