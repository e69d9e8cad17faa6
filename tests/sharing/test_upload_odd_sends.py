"""Upload-link sends that are odd but not wrong keep every good file and never answer 500."""

from __future__ import annotations

import io
import zipfile

from sharing.models import ReceivedFile
from tests.base import BaseTestCase
from tests.sharing.upload_helpers import UploadLinkMixin, scans

NAME_MAX = ReceivedFile._meta.get_field("name").max_length


class OddSendTestCase(UploadLinkMixin, BaseTestCase):
    def test_long_names_inside_a_zip_are_cut_and_the_good_file_is_kept(self) -> None:
        # A ZIP's name and its member's make a path past the 255 characters a row holds:
        # PostgreSQL refused the row and the whole send (the good scan with it) was lost.
        self.assertEqual(self.verify().status_code, 303)
        first, second, _ = scans()
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("n" * 200 + ".txt", b"not an image")
            z.writestr("scans/" + "d" * 200 + ".dcm", first)
            z.writestr("again/" + "e" * 200 + ".dcm", first)  # a duplicate in the same send
        r = self.send(("a" * 150 + ".zip", archive.getvalue()), ("IM2.dcm", second))
        self.assertEqual(r.status_code, 200)
        rows = list(ReceivedFile.objects.filter(link=self.link))
        self.assertEqual(len(rows), 4)
        self.assertTrue(all(len(row.name) <= NAME_MAX for row in rows), [len(r.name) for r in rows])
        pending = [row.name for row in rows if row.state == "pending"]
        self.assertEqual(len(pending), 2)
        self.assertTrue(any(name.endswith("d" * 20 + ".dcm") for name in pending))

    def test_a_send_whose_length_is_not_a_number_is_refused_with_a_reason(self) -> None:
        self.assertEqual(self.verify().status_code, 303)
        r = self.client.generic(
            "POST", "/u/files/", b"x" * 10, "multipart/form-data; boundary=b", CONTENT_LENGTH="abc"
        )
        self.assertEqual(r.status_code, 400)
        self.assertIn(b"length", r.content)
