"""No share token reaches gunicorn's access log, however the link's address is spelled."""

from __future__ import annotations

from urllib.parse import quote, unquote

import pytest
from django.test import SimpleTestCase

from sharing.logfilter import mask_tokens
from tests.integration.webclient import WebClient


def _spellings(token: str) -> list[str]:
    """Addresses that carry the token: percent-encoded characters, %2F, double encoding."""
    one = f"{token[:3]}%{ord(token[3]):02X}{token[4:]}"
    every = "".join(f"%{ord(c):02X}" for c in token)
    return [
        f"/s/{one}",
        f"/s/%2F{token}",
        f"/s/%2f{one}",
        f"/s/{every}",
        f"/s/%252F{token}",
        f"/s//{token}",
        f"/s/download/{token}",
        f"/login/?next=/s/{token}",
        f"/login/?next={quote(f'/s/{token}', safe='')}",
        # The route's own letter encoded (Django decodes it: the link opens), or capitalised
        # (a 404, but the token is as secret).
        f"/%73/{token}",
        f"/%2573/{token}",
        f"/S/{token}",
        f"/%75/{token}",
        f"/U/{token}",
    ]


def _leaks(token: str, text: str) -> bool:
    """Return whether any 10 characters of the token in a row can be read from text."""
    for _ in range(3):
        text = unquote(text)
    return any(token[i : i + 10] in text for i in range(len(token) - 9))


@pytest.mark.usefixtures("served_class")
class LogMaskingTestCase(SimpleTestCase):
    def test_gunicorns_access_log_never_shows_a_token(self) -> None:
        link = self.served.setup("practice_links", links=1, slug="logmask")["links"][0]
        token = link["token"]
        client = WebClient(self.served.base_url, address="198.51.100.77")
        opened = client.get(f"/s/{token[:3]}%{ord(token[3]):02X}{token[4:]}")
        self.assertEqual(opened.status, 303)  # a percent-encoded character still opens it
        for path in _spellings(token):
            client.get(path)
        log = self.served.log()
        self.assertIn("/s/<token>", log)
        self.assertFalse(_leaks(token, log), log[-3000:])

    def test_no_query_string_reaches_the_access_log(self) -> None:
        # The back office's searches and pickers ask by GET: ?q=<a patient's name or ID>.
        client = WebClient(self.served.base_url, address="198.51.100.78")
        for path in (
            "/admin/portal/patient/?q=Demo-Garcia",
            "/admin/autocomplete/?app_label=portal&model_name=study&term=Maria",
            "/admin/audit/accessevent/?patient__birth_date=1984-07-12",
        ):
            client.get(path)
        log = self.served.log()
        self.assertIn("/admin/portal/patient/?<query>", log)
        for said in ("Demo-Garcia", "Maria", "1984-07-12"):
            self.assertNotIn(said, log)

    def test_a_query_is_masked_however_it_is_spelled(self) -> None:
        # A quote inside the query or a method of other length let it through.
        for line in (
            '1.2.3.4 "GET /admin/portal/patient/?q=Demo"Garcia HTTP/1.1" 200 5',
            '1.2.3.4 "PROPFIND /x/?q=Maria HTTP/1.1" 405 0',
            '1.2.3.4 "GET /x/?q=Maria Garcia HTTP/1.1" 400 0',
            '1.2.3.4 "M-SEARCH /x/?q=Maria HTTP/1.1" 400 0',
            '1.2.3.4 "GET /x/?q=Maria" Garcia HTTP/1.1" 400 0',
        ):
            with self.subTest(line=line):
                masked = mask_tokens(line)
                self.assertNotIn("Garcia", masked)
                self.assertNotIn("Maria", masked)
                self.assertIn("?<query> HTTP/1.1", masked)
        self.assertEqual(mask_tokens('"GET /x/?q=Maria" 400 0'), '"GET /x/?<query>" 400 0')

    def test_mask_tokens_catches_every_spelling(self) -> None:
        token = "2cCL9xQv0Jr_b-7mZk3TnWpYhG5uE1aSdFqLoRiVtBw"
        for path in _spellings(token):
            with self.subTest(path=path):
                self.assertFalse(_leaks(token, mask_tokens(f'"GET {path} HTTP/1.1" 404 9')))
        for kept in ("/s/home/", "/s/download/share.zip", "/s/", "/s/code/"):
            with self.subTest(kept=kept):
                self.assertEqual(mask_tokens(f"GET {kept} 200"), f"GET {kept} 200")
        for path in (
            f"/login/set-password/Mg/%{ord(token[0]):02x}{token[1:]}/",
            f"/login/%73et-password/Mg/{token}/",
            f"/login/%75nlock/{token}",
            f"/LOGIN/UNLOCK/{token}",
        ):
            with self.subTest(path=path):
                self.assertFalse(_leaks(token, mask_tokens(f'"GET {path} HTTP/1.1" 404 9')))
        # An encoded line break in a masked address stays encoded: no forged log line.
        forged = mask_tokens(f'"GET /s/{token}%3F%0AFAKE%20line%0D HTTP/1.1" 404 9')
        self.assertNotIn("\n", forged)
        self.assertNotIn("\r", forged)
        self.assertFalse(_leaks(token, forged))
        series = "/s/download/series/0b5e7f3c-8a4d-4c59-9f1e-2a6b7c8d9e0f.zip"
        self.assertEqual(mask_tokens(series), series)

    def test_dicom_uids_in_a_dicomweb_address_are_masked(self) -> None:
        # A UID names one patient's study as surely as an accession number does.
        study, series, sop = "1.2.840.113619.2.55.3.2831", "1.3.12.2.1107.5.1", "2.25.18392"
        line = (
            f'"GET /dicomweb/studies/{study}/series/{series}/instances/{sop}/frames/1,2 '
            'HTTP/1.1" 200 9'
        )
        self.assertEqual(
            mask_tokens(line),
            '"GET /dicomweb/studies/<uid>/series/<uid>/instances/<uid>/frames/1,2 HTTP/1.1" 200 9',
        )
        encoded = f'"GET /dicomweb/studies/{study.replace(".", "%2E")}/metadata HTTP/1.1" 200 9'
        self.assertNotIn("113619", mask_tokens(encoded))
        for kept in ("/static/vendor/lib-1.2.3/x.js", "/dicomweb/studies", "/healthz"):
            with self.subTest(kept=kept):
                self.assertEqual(mask_tokens(f"GET {kept} 200"), f"GET {kept} 200")
