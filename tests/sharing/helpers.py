"""A BaseTestCase with a patient link for pat's study and helpers to open and verify it."""

from __future__ import annotations

from django.test import override_settings

from sharing.models import ShareLink
from sharing.services import IssuedLink, issue_link
from sharing.streaming import AuditedStream
from tests.base import BaseTestCase

PASSWORD = "amber-anchor-apple-arrow-12"
BIRTH = "1980-05-17"


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
class ShareTestCase(BaseTestCase):
    """pat's study shared with pat (patient link, downloads allowed)."""

    def setUp(self) -> None:
        super().setUp()
        self.issued = self.issue()
        self.share = self.issued.share

    def issue(self, study=None, **kwargs) -> IssuedLink:
        """Issue a link (patient by default) with the known password."""
        kwargs.setdefault("recipient_kind", ShareLink.Recipient.PATIENT)
        kwargs.setdefault("password", PASSWORD)
        return issue_link(study=study or self.study, created_by=self.alice, **kwargs)

    def open_link(self, issued: IssuedLink | None = None, client=None):
        """GET the link (no verification) and return the response."""
        return (client or self.client).get((issued or self.issued).path)

    def verify(self, password: str = PASSWORD, birth_date: str = BIRTH, client=None, **extra):
        """POST the verification form and return the response."""
        data = {"password": password, "birth_date": birth_date, **extra}
        return (client or self.client).post("/s/", data)

    def sign_in(self, issued: IssuedLink | None = None, client=None) -> None:
        """Open and verify a patient link in this client."""
        self.open_link(issued, client)
        r = self.verify(client=client)
        assert r.status_code == 303, r.status_code


def add_attachments(study) -> tuple:
    """Store a photo and a PDF report for the study's patient; return (photo, pdf)."""
    from portal import vault
    from portal.demo import phantom
    from portal.models import Attachment

    photo_bytes = phantom.make_photo_jpeg(seed=study.pk, size=(64, 48))
    pdf_bytes = phantom.make_report_pdf(["Report"])
    made = []
    for kind, data, ctype, name in [
        (Attachment.Kind.PHOTO, photo_bytes, "image/jpeg", "smile front ü.jpg"),
        (Attachment.Kind.PDF, pdf_bytes, "application/pdf", "report.pdf"),
    ]:
        made.append(
            Attachment.objects.create(
                practice=study.practice,
                patient=study.patient,
                study=study,
                kind=kind,
                content_type=ctype,
                title=name,
                original_name=name,
                blob=vault.store_bytes(data),
            )
        )
    return tuple(made)


def close(response) -> None:
    """Close the body iterator as a WSGI server does when the client goes away."""
    # response.close() here would fire the test client's request_finished, closing the test DB.
    for closer in response._resource_closers:
        if isinstance(getattr(closer, "__self__", None), AuditedStream):
            closer()
