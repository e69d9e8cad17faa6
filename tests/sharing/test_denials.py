"""Every refused recipient request writes one denied AccessEvent and changes nothing else."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

from django.apps import apps
from django.core import mail
from django.utils import timezone

from audit.models import AccessEvent, Action, Outcome
from sharing import session
from sharing.models import ShareCode, ShareLink
from sharing.services import IssuedLink, revoke_link
from tests.sharing.helpers import ShareTestCase, add_attachments


def row_counts() -> dict[str, int]:
    """Count the rows of every table but sessions, which a request may rewrite."""
    return {
        m._meta.label: m._default_manager.count()
        for m in apps.get_models()
        if m._meta.label != "sessions.Session"
    }


class DenialBase(ShareTestCase):
    """assert_one_denial, and the download URLs of pat's shared study."""

    def setUp(self) -> None:
        super().setUp()
        self.photo, _ = add_attachments(self.study)
        series = self.study.series.get()
        instance = series.instances.first()
        self.download_urls = [
            "/s/download/share.zip",
            "/s/download/pictures.zip",
            f"/s/download/series/{series.code}.zip",
            f"/s/download/series/{series.code}/pictures.zip",
            f"/s/download/attachments/{self.photo.code}",
            f"/s/download/instances/{instance.code}",
        ]

    def assert_one_denial(
        self,
        method: str,
        url: str,
        *,
        status: int = 404,
        action: str = Action.ACCESS_DENIED,
        share: ShareLink | None = None,
        reason: str,
    ):
        """Send the request; check its status and that it left exactly one denied event."""
        counts = row_counts()
        links = list(ShareLink.objects.order_by("pk").values())
        last = AccessEvent.objects.order_by("pk").values_list("pk", flat=True).last() or 0
        outbox = len(mail.outbox)
        r = getattr(self.client, method)(url)
        self.assertEqual(r.status_code, status)
        self.assertNotIn(b"Traceback", r.content)
        event = AccessEvent.objects.filter(pk__gt=last).get()
        self.assertEqual((event.action, event.outcome), (action, Outcome.DENIED))
        self.assertEqual(event.detail["reason"], reason)
        self.assertEqual(event.share_code, share.code if share else None)
        counts["audit.AccessEvent"] += 1
        self.assertEqual(row_counts(), counts)
        self.assertEqual(list(ShareLink.objects.order_by("pk").values()), links)
        self.assertEqual(len(mail.outbox), outbox)
        return event, r

    def revoked_session(self) -> IssuedLink:
        """Verify a fresh link in this client, then revoke it."""
        issued = self.issue()
        self.sign_in(issued)
        revoke_link(issued.share, by=self.alice)
        return issued


class RecipientDenialTestCase(DenialBase):
    def test_downloads_after_the_session_ended(self) -> None:
        for url in self.download_urls:
            with self.subTest(url=url):
                share = self.revoked_session().share
                self.assert_one_denial("get", url, share=share, reason="session_ended")

    def test_downloads_after_the_idle_timeout(self) -> None:
        self.sign_in()
        later = timezone.now() + timedelta(minutes=60)
        with mock.patch.object(session, "_now", return_value=later):
            self.assert_one_denial(
                "get",
                self.download_urls[0],
                share=self.share,
                reason="session_ended",
            )

    def test_downloads_before_verification(self) -> None:
        self.open_link()
        for url in self.download_urls:
            with self.subTest(url=url):
                self.assert_one_denial("get", url, share=self.share, reason="not_verified")

    def test_downloads_without_a_link(self) -> None:
        for url in self.download_urls:
            with self.subTest(url=url):
                self.assert_one_denial("get", url, reason="no_link")

    def test_downloads_in_a_staff_session_name_the_staff_member(self) -> None:
        self.login(self.alice)
        event, _ = self.assert_one_denial("get", self.download_urls[0], reason="no_link")
        self.assertEqual((event.user, event.practice), (self.alice, self.practice))

    def test_verify_without_an_opened_link(self) -> None:
        for method in ("get", "post"):
            with self.subTest(method=method):
                self.assert_one_denial(method, "/s/", reason="no_link")

    def test_verify_page_of_a_revoked_link(self) -> None:
        self.open_link()
        revoke_link(self.share, by=self.alice)
        self.assert_one_denial(
            "get",
            "/s/",
            status=410,
            action=Action.SHARE_VERIFY,
            share=self.share,
            reason="revoked",
        )

    def test_home_without_a_link(self) -> None:
        self.assert_one_denial("get", "/s/home/", reason="no_link")

    def test_code_request_without_a_link(self) -> None:
        self.assert_one_denial("post", "/s/code/", reason="no_link")

    def test_code_request_on_a_patient_link(self) -> None:
        self.open_link()
        self.assert_one_denial("post", "/s/code/", share=self.share, reason="not_referrer")

    def test_too_large_an_export(self) -> None:
        self.sign_in()
        with mock.patch("sharing.downloads.EXPORT_MAX_IMAGES", 1):
            self.assert_one_denial(
                "get",
                "/s/download/pictures.zip",
                status=413,
                action=Action.DOWNLOAD,
                share=self.share,
                reason="too_many_images",
            )


class CodeRequestDenialTestCase(DenialBase):
    def setUp(self) -> None:
        super().setUp()
        self.issued = self.issue(recipient_kind="referrer", recipient_email="dr@example.org")
        self.share = self.issued.share
        self.open_link()

    def test_a_refused_code_request_looks_like_a_sent_one(self) -> None:
        sent = self.client.post("/s/code/")
        self.assertEqual(len(mail.outbox), 1)
        _, refused = self.assert_one_denial(
            "post",
            "/s/code/",
            status=303,
            action=Action.SHARE_EMAIL,
            share=self.share,
            reason="too_many_codes",
        )
        self.assertEqual(refused["Location"], sent["Location"])
        self.assertEqual(ShareCode.objects.filter(share=self.share).count(), 1)

    def test_a_code_request_on_a_revoked_link(self) -> None:
        revoke_link(self.share, by=self.alice)
        self.assert_one_denial(
            "post",
            "/s/code/",
            status=410,
            action=Action.SHARE_EMAIL,
            share=self.share,
            reason="revoked",
        )
