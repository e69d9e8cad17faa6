from __future__ import annotations

import logging
from datetime import timedelta
from unittest.mock import patch

from django.utils import timezone

from audit.models import AccessEvent, Action
from sharing.logfilter import mask_tokens
from sharing.session import SESSION_KEY, VERIFIED_KEY
from tests.sharing.helpers import ShareTestCase


class OpenShareTestCase(ShareTestCase):
    def test_it_redirects_to_a_url_without_the_token(self) -> None:
        r = self.open_link()
        self.assertEqual(r.status_code, 303)
        self.assertEqual(r["Location"], "/s/")
        self.assertNotIn(self.issued.token, r["Location"])
        self.assertEqual(self.client.session[SESSION_KEY], str(self.share.code))

    def test_it_cycles_the_session_key(self) -> None:
        self.client.get("/s/")  # no session yet: 404, but a session cookie may exist
        session = self.client.session
        session["x"] = 1
        session.save()
        before = session.session_key
        self.open_link()
        self.assertNotEqual(self.client.session.session_key, before)

    def test_unknown_and_altered_tokens_are_404(self) -> None:
        token = self.issued.token
        for bad in ["nope", token[:-1], token[:-1] + ("A" if token[-1] != "A" else "B"), "x" * 200]:
            with self.subTest(bad=bad[:10]):
                self.assertEqual(self.client.get(f"/s/{bad}").status_code, 404)
        denied = AccessEvent.objects.filter(action=Action.SHARE_OPEN, outcome="denied")
        self.assertEqual(denied.count(), 4)
        self.assertFalse(denied.exclude(share_code=None).exists())

    def test_expired_link_is_410_with_practice_contact_only(self) -> None:
        self.share.expires_at = timezone.now() - timedelta(minutes=1)
        self.share.save()
        r = self.open_link()
        self.assertEqual(r.status_code, 410)
        self.assertContains(r, "Smile Dental", status_code=410)
        self.assertContains(r, "555-0100", status_code=410)
        self.assertNotContains(r, "Pat", status_code=410)
        self.assertNotContains(r, "CBCT", status_code=410)
        self.assertContains(r, 'action="/s/request/"', status_code=410)
        self.assertNotIn(VERIFIED_KEY, self.client.session)
        ended = timezone.localtime(self.share.expires_at, self.practice.zone)
        said = f"It ended on {ended.day} {ended:%B %Y, %H:%M} ({ended:%Z})"
        self.assertContains(r, said, status_code=410)  # when, not only that

    def test_revoked_link_is_410(self) -> None:
        self.share.revoked_at = timezone.now()
        self.share.save()
        self.assertEqual(self.open_link().status_code, 410)

    def test_locked_link_is_423(self) -> None:
        self.share.locked_at = timezone.now()
        self.share.save()
        r = self.open_link()
        self.assertEqual(r.status_code, 423)
        self.assertContains(r, "locked", status_code=423)

    def test_get_consumes_nothing(self) -> None:
        for _ in range(3):
            self.open_link()
        self.share.refresh_from_db()
        self.assertEqual((self.share.open_count, self.share.download_count), (0, 0))
        self.assertEqual(self.share.failed_attempts, 0)

    def test_it_audits_each_open_without_the_token(self) -> None:
        self.open_link()
        event = AccessEvent.objects.filter(action=Action.SHARE_OPEN).get()
        self.assertEqual(event.share_code, self.share.code)
        self.assertNotIn(self.issued.token, str(event.detail))

    def test_it_rejects_post(self) -> None:
        self.assertEqual(self.client.post(self.issued.path).status_code, 405)

    def test_no_log_line_carries_the_token(self) -> None:
        """Requests that django.request logs with the real token's path show it masked."""
        token = self.issued.token
        with self.assertLogs("django.request", logging.WARNING) as logs:
            self.assertEqual(self.client.get(f"/s/{token}/extra").status_code, 404)
            self.share.revoked_at = timezone.now()
            self.share.save()
            self.assertEqual(self.open_link().status_code, 410)
        self.assertFalse([line for line in logs.output if token in line])
        self.assertIn("Not Found: /s/<token>/<token>", logs.output[0])
        self.assertIn("Gone: /s/<token>", logs.output[1])

    def test_a_crash_logs_the_path_without_the_token(self) -> None:
        """An exception in the view is logged as an error whose path has the token masked."""
        self.client.raise_request_exception = False
        with (
            patch("sharing.views.find_link", side_effect=RuntimeError("boom")),
            self.assertLogs("django.request", logging.ERROR) as logs,
        ):
            self.assertEqual(self.open_link().status_code, 500)
        self.assertFalse([line for line in logs.output if self.issued.token in line])
        self.assertIn("Internal Server Error: /s/<token>", logs.output[0])

    def test_log_filter_masks_token_paths(self) -> None:
        line = mask_tokens(f"Internal Server Error: {self.issued.path}")
        self.assertEqual(line, "Internal Server Error: /s/<token>")
        self.assertEqual(mask_tokens("GET /s/home/ 200"), "GET /s/home/ 200")
