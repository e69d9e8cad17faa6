"""A NUL byte anywhere in an address or a typed form is refused with 400 before any view:
PostgreSQL text cannot hold one (it answered 500), and no name or code has one."""

from __future__ import annotations

from tests.base import BaseTestCase


class NulByteTestCase(BaseTestCase):
    def test_addresses_query_strings_and_forms_with_a_nul_byte_are_refused(self) -> None:
        self.login(self.alice)
        cases = [
            ("post", "/practice/staff/a%00b/role/", {"role": "clinician"}),
            ("get", "/", {"q": "Pat\x00"}),
            ("post", f"/received/patients/{self.pat.code}/ask/", {"sender_name": "a\x00b"}),
        ]
        for method, path, data in cases:
            with self.subTest(path=path, data=data):
                r = getattr(self.client, method)(path, data)
                self.assertEqual(r.status_code, 400)
                self.assertContains(r, "NUL", status_code=400)

    def test_a_page_without_one_is_served(self) -> None:
        self.login(self.alice)
        self.assertEqual(self.client.get("/", {"q": "Pat"}).status_code, 200)
