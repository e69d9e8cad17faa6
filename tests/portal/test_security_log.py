"""What Django's security checks log about a hostile request: one line, never a traceback."""

from __future__ import annotations

import io
import logging

from django.test import TestCase

from portal.errors import QuietLibrary


class SecurityLogTestCase(TestCase):
    def test_hostile_requests_are_one_line_a_kind_in_the_log(self) -> None:
        # Django logged each at ERROR with the whole stack: an operator read a traceback for
        # every such request, and a script could fill the log with them.
        logger = logging.getLogger("django.security")
        # The portal's own handlers (the test runner adds its capture handlers too).
        handlers = [
            h for h in logger.handlers if any(isinstance(f, QuietLibrary) for f in h.filters)
        ]
        self.assertTrue(handlers, logger.handlers)
        for handler in handlers:  # what earlier tests logged does not count
            for quiet in handler.filters:
                quiet._told.clear()
        log = io.StringIO()
        streams = [handler.setStream(log) for handler in handlers]
        try:
            form = "&".join(f"f{n}=x" for n in range(1500))
            for _ in range(3):
                r = self.client.post(
                    "/login/", form, content_type="application/x-www-form-urlencoded"
                )
                self.assertEqual(r.status_code, 400)
            for n in range(5):  # a bad Host, each a different one: still one kind
                self.client.get("/login/", HTTP_HOST=f"evil-{n}.example")
        finally:
            for handler, stream in zip(handlers, streams, strict=True):
                handler.setStream(stream)
        lines = log.getvalue().splitlines()
        self.assertEqual(len(lines), 2, lines)  # once a minute for each kind
        self.assertIn("TooManyFieldsSent", lines[0])
        self.assertIn("DisallowedHost", lines[1])
