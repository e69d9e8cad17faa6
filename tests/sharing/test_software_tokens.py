"""The recipient makes, sees once and revokes tokens; the token is the only way into DICOMweb."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

from django.utils import timezone

from audit.models import AccessEvent, Action, Outcome
from portal.models import Patient
from sharing.dicomweb.tokens import create_token
from sharing.models import ShareLink, SoftwareToken
from sharing.services import hash_token, revoke_link
from tests.base import make_ct_study
from tests.sharing.helpers import ShareTestCase, close


class SoftwareTokenTestCase(ShareTestCase):
    def qido(self, token: str, path: str = "/dicomweb/studies", **headers):
        return self.client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}", **headers)

    def test_it_shows_a_new_token_once_with_weasis_and_a_pasteable_address(self) -> None:
        self.sign_in()
        r = self.client.post("/s/software/tokens/", {"label": "Weasis"})
        self.assertEqual(r.status_code, 200)
        raw = r.context["new_token"]
        self.assertContains(r, raw)
        self.assertContains(r, "weasis://?%24dicom%3Ars")
        self.assertContains(r, f"token:{raw}@testserver/dicomweb")
        token = SoftwareToken.objects.get(share=self.share)
        self.assertEqual(token.token_hash, hash_token(raw))
        self.assertNotContains(self.client.get("/s/software/"), raw)
        self.assertEqual(token.expires_at, self.share.expires_at)

    def test_a_new_token_comes_with_copy_buttons_and_plain_words(self) -> None:
        # It said "copy it now" with no way to copy on a phone, and offered to make another.
        self.sign_in()
        r = self.client.post("/s/software/tokens/", {"label": "Weasis"})
        for field in ("dicomweb-paste", "dicomweb-base", "dicomweb-header"):
            self.assertContains(r, f'data-copy="{field}"')
        self.assertContains(r, "Weasis installed")
        self.assertNotContains(r, "Make an access token</button>")
        self.assertContains(self.client.get("/s/software/"), "Make an access token</button>")

    def test_a_name_with_control_characters_is_refused_with_a_reason(self) -> None:
        # An escape sequence in the name went into the row, and on to any terminal that
        # printed the access history.
        self.sign_in()
        r = self.client.post("/s/software/tokens/", {"label": "lab\x1b[31mel"})
        self.assertEqual(r.status_code, 400)
        self.assertContains(r, "control characters", status_code=400)
        self.assertFalse(SoftwareToken.objects.filter(share=self.share).exists())

    def test_the_same_form_sent_again_makes_no_second_token(self) -> None:
        # Reloading the page that showed a token sent the form again and made another.
        self.sign_in()
        page = self.client.get("/s/software/").content.decode()
        once = re.search(r'name="issue_key" value="([^"]+)"', page)[1]
        # A refused name uses nothing up: the corrected form goes through.
        refused = self.client.post("/s/software/tokens/", {"label": "a\x1bb", "issue_key": once})
        self.assertEqual(refused.status_code, 400)
        first = self.client.post("/s/software/tokens/", {"label": "Weasis", "issue_key": once})
        self.assertEqual(first.status_code, 200)
        again = self.client.post("/s/software/tokens/", {"label": "Weasis", "issue_key": once})
        self.assertContains(again, "already sent", status_code=409)
        self.assertNotIn("new_token", again.context)
        self.assertEqual(SoftwareToken.objects.filter(share=self.share).count(), 1)
        fresh = re.search(r'name="issue_key" value="([^"]+)"', again.content.decode())[1]
        self.assertNotEqual(fresh, once)
        self.client.post("/s/software/tokens/", {"label": "Second", "issue_key": fresh})
        self.assertEqual(SoftwareToken.objects.filter(share=self.share).count(), 2)

    def test_it_needs_a_verified_session(self) -> None:
        self.open_link()
        r = self.client.post("/s/software/tokens/", {"label": "x"})
        self.assertEqual(r.status_code, 404)
        self.assertFalse(SoftwareToken.objects.exists())
        r = self.client.get("/s/software/tokens/")
        self.assertIn(r.status_code, (404, 405))

    def test_it_refuses_a_view_only_link(self) -> None:
        issued = self.issue(allow_download=False)
        self.sign_in(issued)
        r = self.client.post("/s/software/tokens/", {"label": "x"})
        self.assertEqual(r.status_code, 403)
        self.assertFalse(SoftwareToken.objects.exists())

    def test_it_revokes_a_token_at_once(self) -> None:
        self.sign_in()
        raw = self.client.post("/s/software/tokens/", {}).context["new_token"]
        self.assertEqual(self.qido(raw).status_code, 200)
        token = SoftwareToken.objects.get()
        r = self.client.post(f"/s/software/tokens/{token.code}/revoke/")
        self.assertEqual(r.status_code, 303)
        self.assertEqual(self.qido(raw).status_code, 410)

    def test_it_checks_the_share_on_every_request(self) -> None:
        _, raw = create_token(self.share)
        self.assertEqual(self.qido(raw).status_code, 200)
        for change, status in [
            (dict(locked_at=timezone.now()), 423),
            (dict(locked_at=None, expires_at=timezone.now() - timedelta(seconds=1)), 410),
        ]:
            with self.subTest(change=change):
                ShareLink.objects.filter(pk=self.share.pk).update(**change)
                self.assertEqual(self.qido(raw).status_code, status)
        ShareLink.objects.filter(pk=self.share.pk).update(expires_at=self.share.expires_at)
        revoke_link(self.share, by=self.alice)
        self.assertEqual(self.qido(raw).status_code, 410)

    def test_it_lets_nobody_in_without_a_token(self) -> None:
        self.sign_in()  # a verified browser session is not a way into DICOMweb
        for header in [{}, {"HTTP_AUTHORIZATION": "Bearer pst_guessed"}]:
            with self.subTest(header=header):
                r = self.client.get("/dicomweb/studies", **header)
                self.assertEqual(r.status_code, 401)
                self.assertIn("Bearer", r["WWW-Authenticate"])
        denied = AccessEvent.objects.filter(action=Action.ACCESS_DENIED, detail__via="dicomweb")
        self.assertEqual(denied.count(), 2)

    def test_it_accepts_the_token_as_a_basic_password(self) -> None:
        import base64

        _, raw = create_token(self.share)
        basic = base64.b64encode(f"token:{raw}".encode()).decode()
        r = self.client.get("/dicomweb/studies", HTTP_AUTHORIZATION=f"Basic {basic}")
        self.assertEqual(r.status_code, 200)

    def test_it_throttles_guessed_tokens_like_passwords(self) -> None:
        from sharing.models import VerificationFailure

        now = timezone.now()
        VerificationFailure.objects.bulk_create(
            VerificationFailure(address="127.0.0.1", created_at=now - timedelta(minutes=1))
            for _ in range(11)
        )
        _, raw = create_token(self.share)
        r = self.qido(raw)
        self.assertEqual(r.status_code, 429)
        self.assertTrue(int(r["Retry-After"]) > 0)

    def test_a_right_token_right_after_a_wrong_one_waits_and_is_never_counted(self) -> None:
        from sharing.models import VerificationFailure

        _, raw = create_token(self.share)
        self.assertEqual(self.qido("pst_typo").status_code, 401)
        # A viewer fetching several things at once inside the short wait after that typo
        # (the clock held there: on a busy machine fourteen requests outlast a second).
        typo_at = VerificationFailure.objects.get().created_at
        with mock.patch("sharing.throttle._now", return_value=typo_at):
            for _ in range(14):
                r = self.qido(raw)
                self.assertEqual(r.status_code, 429)
                self.assertLessEqual(int(r["Retry-After"]), 60)
        self.assertEqual(VerificationFailure.objects.count(), 1)
        # Nothing else that address does is held against it: once the wait is over, it is in.
        VerificationFailure.objects.update(created_at=timezone.now() - timedelta(minutes=1))
        self.assertEqual(self.qido(raw).status_code, 200)
        # A request without a token is told what to send, whatever the wait.
        self.qido("pst_typo")
        self.assertEqual(self.client.get("/dicomweb/studies").status_code, 401)

    def test_it_never_reaches_another_patients_study(self) -> None:
        other = Patient.objects.create(practice=self.practice, patient_id="P-2", name="Other One")
        other_study = make_ct_study(other, uid_root="1.2.826.0.1.3680043.8.498.2")
        _, raw = create_token(self.share)
        r = self.qido(raw, f"/dicomweb/studies/{other_study.study_uid}/series")
        self.assertEqual(r.status_code, 404)
        r = self.qido(raw, f"/dicomweb/studies/{other_study.study_uid}")
        self.assertEqual(r.status_code, 404)
        other_series = other_study.series.get().series_uid
        for path in (
            f"/dicomweb/studies/{other_study.study_uid}/instances",
            f"/dicomweb/studies/{other_study.study_uid}/series/{other_series}/instances",
            f"/dicomweb/studies/{self.study.study_uid}/series/{other_series}/instances",
        ):
            with self.subTest(path=path):
                self.assertEqual(self.qido(raw, path).status_code, 404)
        self.assertEqual(len(self.qido(raw).json()), 1)
        denied = AccessEvent.objects.filter(action=Action.ACCESS_DENIED, outcome=Outcome.DENIED)
        self.assertEqual(denied.filter(share_code=self.share.code).count(), 5)

    def test_it_audits_every_use_by_token_id_never_the_secret(self) -> None:
        token, raw = create_token(self.share)
        self.qido(raw)
        self.qido(raw, f"/dicomweb/studies/{self.study.study_uid}")
        uses = AccessEvent.objects.filter(detail__software_token=str(token.code))
        self.assertEqual(
            sorted(uses.values_list("action", flat=True)), [Action.DOWNLOAD, Action.SEARCH]
        )
        for event in AccessEvent.objects.all():
            self.assertNotIn(raw, str(event.detail))

    def test_it_counts_one_download_per_token_and_honours_the_limit(self) -> None:
        issued = self.issue(max_downloads=1)
        token, raw = create_token(issued.share)
        uid = self.study.study_uid
        self.assertEqual(self.qido(raw, f"/dicomweb/studies/{uid}").status_code, 200)
        self.assertEqual(self.qido(raw, f"/dicomweb/studies/{uid}").status_code, 200)
        issued.share.refresh_from_db()
        self.assertEqual(issued.share.download_count, 1)
        _, second = create_token(issued.share)
        self.assertEqual(self.qido(second, f"/dicomweb/studies/{uid}").status_code, 403)

    def test_it_records_every_frame_request_of_a_viewer(self) -> None:
        # Every use of a token is audited like a download: a viewer pulling the same series
        # three times in a minute is three events, each naming what it read.
        token, raw = create_token(self.share)
        instance = self.study.series.get().instances.first()
        path = (
            f"/dicomweb/studies/{self.study.study_uid}/series/{instance.series.series_uid}"
            f"/instances/{instance.sop_instance_uid}"
        )
        for ending in ("/frames/1", "/frames/1", "/rendered"):
            self.assertEqual(self.qido(raw, path + ending).status_code, 200)
        viewing = AccessEvent.objects.filter(
            action=Action.VIEW_SERIES, detail__software_token=str(token.code)
        ).order_by("pk")
        self.assertEqual(
            [(e.detail["what"], e.detail["instance"], e.detail["frames"]) for e in viewing],
            [
                ("frames", instance.sop_instance_uid, [1]),
                ("frames", instance.sop_instance_uid, [1]),
                ("rendered", instance.sop_instance_uid, [1]),
            ],
        )
        self.assertEqual({e.share_code for e in viewing}, {self.share.code})

    def frames_path(self, numbers: str = "1") -> str:
        instance = self.study.series.get().instances.first()
        return (
            f"/dicomweb/studies/{self.study.study_uid}/series/{instance.series.series_uid}"
            f"/instances/{instance.sop_instance_uid}/frames/{numbers}"
        )

    def test_a_frame_is_sent_once_per_request(self) -> None:
        # The same frame asked for a thousand times made a thousand copies in memory.
        _, raw = create_token(self.share)
        r = self.qido(raw, self.frames_path(",".join(["1"] * 1000)))
        self.assertEqual(r.status_code, 400)
        self.assertIn("once", r.json()["error"])
        r = self.qido(raw, self.frames_path("1"))
        self.assertEqual(r.status_code, 200)
        self.assertEqual(b"".join(r.streaming_content).count(b"Content-Type:"), 1)

    def test_frames_are_originals_and_keep_to_the_download_limit(self) -> None:
        issued = self.issue(max_downloads=1)
        _, first = create_token(issued.share)
        # A viewer's first frames count the link's one download, as the originals would.
        self.assertEqual(self.qido(first, self.frames_path()).status_code, 200)
        self.assertEqual(self.qido(first, self.frames_path()).status_code, 200)
        issued.share.refresh_from_db()
        self.assertEqual(issued.share.download_count, 1)
        # Another token of the link, with no download left: no pixel data, as no originals.
        _, second = create_token(issued.share)
        uid = self.study.study_uid
        self.assertEqual(self.qido(second, f"/dicomweb/studies/{uid}").status_code, 403)
        r = self.qido(second, self.frames_path())
        self.assertEqual(r.status_code, 403)
        self.assertIn("no downloads left", r.json()["error"])
        # Looking stays possible: rendered images and the attributes, like the web viewer.
        rendered = self.frames_path() + "/rendered"
        self.assertEqual(self.qido(second, rendered).status_code, 200)
        self.assertEqual(self.qido(second, f"/dicomweb/studies/{uid}/metadata").status_code, 200)

    def test_originals_record_their_end_with_the_bytes_sent(self) -> None:
        token, raw = create_token(self.share)
        r = self.qido(raw, f"/dicomweb/studies/{self.study.study_uid}")
        body = b"".join(r.streaming_content)
        close(r)
        ends = AccessEvent.objects.filter(
            action=Action.DOWNLOAD, detail__phase="end", detail__software_token=str(token.code)
        )
        self.assertEqual(ends.count(), 1)
        end = ends.get()
        self.assertEqual(end.detail["bytes"], len(body))
        self.assertEqual(end.detail["bytes"], int(r["Content-Length"]))
        self.assertTrue(end.detail["complete"])
        self.assertEqual(end.outcome, Outcome.OK)

    def test_requests_of_one_token_at_once_count_one_download(self) -> None:
        from django.db import transaction

        from sharing.dicomweb.tokens import count_download_once, find_token

        issued = self.issue(max_downloads=2)
        _, raw = create_token(issued.share)
        # Each request read the token when it came in, before either counted.
        first, second = find_token(raw), find_token(raw)
        for token in (first, second):
            with transaction.atomic():
                self.assertTrue(count_download_once(token, issued.share))
        issued.share.refresh_from_db()
        self.assertEqual(issued.share.download_count, 1)

    def test_a_request_read_before_its_tokens_download_was_counted_still_may_read(self) -> None:
        # The viewer's parallel first frames: this request read the token before another
        # counted the link's one download, and the link after. The download is the token's.
        from django.db import transaction

        from sharing.dicomweb.tokens import count_download_once, downloads_left, find_token

        issued = self.issue(max_downloads=1)
        _, raw = create_token(issued.share)
        stale, counting = find_token(raw), find_token(raw)
        with transaction.atomic():
            self.assertTrue(count_download_once(counting, issued.share))
        issued.share.refresh_from_db()
        self.assertTrue(downloads_left(stale, issued.share))

    def test_the_download_frames_count_is_in_the_access_history(self) -> None:
        issued = self.issue(max_downloads=1)
        token, raw = create_token(issued.share)
        # Viewing the series first (rendered) must not hide the download that follows.
        self.assertEqual(self.qido(raw, self.frames_path() + "/rendered").status_code, 200)
        self.assertEqual(self.qido(raw, self.frames_path()).status_code, 200)
        downloads = AccessEvent.objects.filter(
            action=Action.DOWNLOAD, detail__software_token=str(token.code), detail__what="frames"
        )
        self.assertEqual(downloads.count(), 1)
        self.assertEqual(downloads.get().share_code, issued.share.code)
