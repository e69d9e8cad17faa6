"""Shared by the upload-link tests: a sender's scans and a verified, sending client."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from portal.demo.phantom import PhantomGeometry, write_cbct
from sharing.uploads.services import issue_upload_link

PASSWORD = "amber-anchor-apple-arrow-12"
GEOMETRY = PhantomGeometry(slices=3, rows=32, columns=32, pixel_spacing_mm=2.0, marker_slice=1)


def scans(
    patient_id: str = "OTHER-77", patient_name: str = "Example^Pat", **more: object
) -> list[bytes]:
    folder = Path(tempfile.mkdtemp(prefix="upload-link-"))
    files = write_cbct(
        folder,
        GEOMETRY,
        patient_name=patient_name,
        patient_id=patient_id,  # another practice numbers its patients its own way
        birth_date=date(1980, 5, 17),
        study_date=date(2025, 11, 3),
        description="CBCT from Dr Other",
        **more,
    )
    return [f.read_bytes() for f in files]


# As long as a browser's: a short boundary turns up inside 32 MiB of random bytes.
BOUNDARY = "----portal-test-boundary-7f3a9c2e41d8"


def multipart(name: str, content: bytes) -> bytes:
    """One file as a browser sends it: a form part under the name `files`."""
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


class UploadLinkMixin:
    """Issues an upload link for self.pat (a BaseTestCase's) and sends through it."""

    def setUp(self) -> None:
        super().setUp()
        self.issued = issue_upload_link(
            patient=self.pat, created_by=self.alice, password=PASSWORD, sender_name="Dr Other"
        )
        self.link = self.issued.link

    def verify(self, password: str = PASSWORD, birth_date: str = "1980-05-17"):
        self.client.get(self.issued.path)
        return self.client.post("/u/", {"password": password, "birth_date": birth_date})

    def send(self, *files: tuple[str, bytes]):
        uploads = [SimpleUploadedFile(name, data) for name, data in files]
        return self.client.post("/u/files/", {"files": uploads})
