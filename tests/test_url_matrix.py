"""Role x action x practice: every staff URL has a row, and each persona gets what it should.

Personas: anonymous; bob (front desk, practice A); alice (admin, A); hy (hygienist in A who sees
only assigned patients, none assigned); charlie (clinician, practice B); cli (clinician, A);
hya (hygienist in A assigned the patient). A new URL in the portal, shares, viewer or passkey
(otp_webauthn) namespaces without a row here fails test_every_staff_url_has_a_row. Every 404
a signed-in persona gets must leave an access-denied record.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.contrib.auth.models import User
from django.urls import URLResolver, get_resolver
from django_otp_webauthn.models import WebAuthnCredential

from audit.models import AccessEvent, Outcome
from portal import vault
from portal.models import PendingFile, Role, UploadBatch
from portal.workspace.views.auth import invitation_url
from sharing.models import LinkRequest
from sharing.services import issue_link
from tests.base import BaseTestCase, make_ct_study, make_staff
from tests.sharing.helpers import add_attachments

PERSONAS = ["anon", "bob", "alice", "hy", "charlie", "cli", "hya"]
TUS = {"Tus-Resumable": "1.0.0"}
CURVE = "points=1,1;3,2;5,1&occlusal=0"  # a short arch on the test series' small image


@dataclass
class Row:
    method: str
    path: Callable[[MatrixTestCase], str]
    expect: dict[str, int]
    data: Callable[[MatrixTestCase], dict] = lambda t: {}
    headers: Callable[[MatrixTestCase], dict] = lambda t: {}
    extra: dict = field(default_factory=dict)


def _for(
    anon: int, bob: int, alice: int, hy: int, charlie: int, cli: int | None = None
) -> dict[str, int]:
    """The clinician of practice A, and the hygienist assigned the patient, get what the admin
    gets unless told otherwise (admin-only pages, another member's upload)."""
    cli = alice if cli is None else cli
    return dict(zip(PERSONAS, [anon, bob, alice, hy, charlie, cli, cli], strict=True))


def _tus_meta(t: MatrixTestCase) -> dict:
    batch = base64.b64encode(str(t.batch.code).encode()).decode()
    return {**TUS, "Upload-Length": "10", "Upload-Metadata": f"batch {batch}"}


MATRIX: dict[str, Row] = {
    "portal:home": Row("get", lambda t: "/", _for(302, 200, 200, 200, 200)),
    "portal:login": Row("get", lambda t: "/login/", _for(200, 302, 302, 302, 302)),
    "portal:verify": Row("get", lambda t: "/login/verify/", _for(302, 302, 302, 302, 302)),
    "portal:enroll": Row("get", lambda t: "/login/enroll/", _for(302, 302, 302, 302, 302)),
    "portal:logout": Row("post", lambda t: "/logout/", _for(302, 302, 302, 302, 302)),
    "portal:patient": Row(
        "get", lambda t: f"/patients/{t.pat.code}/", _for(302, 200, 200, 404, 404)
    ),
    "portal:study": Row(
        "get", lambda t: f"/studies/{t.study.code}/", _for(302, 200, 200, 404, 404)
    ),
    # Pixels are needed: front desk (bob) is refused as in the viewer.
    "portal:study-deidentified": Row(
        "get",
        lambda t: f"/studies/{t.study.code}/deidentified.zip",
        _for(302, 404, 200, 404, 404),
    ),
    "portal:issue-share": Row(
        "post",
        lambda t: f"/studies/{t.study.code}/share/",
        # Front desk without image rights may not share images (the form says why).
        _for(302, 400, 200, 404, 404),
        data=lambda t: {"recipient_kind": "patient", "expires_in_days": 3},
    ),
    "portal:upload": Row("get", lambda t: "/upload/", _for(302, 200, 200, 200, 200)),
    "portal:pending": Row("get", lambda t: "/pending/", _for(302, 200, 200, 200, 200)),
    # No record number given: staff of the practice are sent back to the queue with a message.
    "portal:pending-attach": Row(
        "post", lambda t: f"/pending/{t.pending.code}/attach/", _for(302, 302, 302, 302, 404)
    ),
    "portal:upload-batch": Row("post", lambda t: "/upload/batches/", _for(302, 201, 201, 201, 201)),
    "portal:upload-status": Row(
        "get",
        lambda t: f"/upload/batches/{t.batch.code}/",
        _for(302, 200, 404, 404, 404),
    ),
    "portal:upload-finish": Row(
        "post",
        lambda t: f"/upload/batches/{t.batch.code}/finish/",
        _for(302, 409, 404, 404, 404),
    ),
    "portal:tus-create": Row(
        "post", lambda t: "/upload/tus/", _for(302, 201, 404, 404, 404), headers=_tus_meta
    ),
    "portal:tus-upload": Row(
        "head",
        lambda t: f"/upload/tus/{t.upload.code}",
        _for(302, 200, 404, 404, 404),
        headers=lambda t: TUS,
    ),
    "portal:practice-settings": Row(
        "get", lambda t: "/practice/settings/", _for(302, 404, 200, 404, 404, cli=404)
    ),
    "portal:staff-list": Row(
        "get", lambda t: "/practice/staff/", _for(302, 404, 200, 404, 404, cli=404)
    ),
    "portal:staff-role": Row(
        "post",
        lambda t: "/practice/staff/dora/role/",
        _for(302, 404, 302, 404, 404, cli=404),
        data=lambda t: {"role": Role.CLINICIAN},
    ),
    "portal:staff-lift-pause": Row(
        "post",
        lambda t: "/practice/staff/dora/lift-pause/",
        _for(302, 404, 302, 404, 404, cli=404),
    ),
    # Anyone may ask for an unlock link; the answer never says whether the account exists.
    "portal:unlock-request": Row(
        "post",
        lambda t: "/login/unlock/",
        _for(200, 200, 200, 200, 200),
        data=lambda t: {"username": "dora"},
    ),
    "portal:unlock": Row(
        "get", lambda t: "/login/unlock/not-a-link/", _for(410, 410, 410, 410, 410)
    ),
    "portal:staff-active": Row(
        "post",
        lambda t: "/practice/staff/dora/active/",
        _for(302, 404, 302, 404, 404, cli=404),
        data=lambda t: {"active": "1"},
    ),
    "portal:staff-add": Row(
        "get", lambda t: "/practice/staff/new/", _for(302, 404, 200, 404, 404, cli=404)
    ),
    "portal:staff-password-link": Row(
        "post",
        lambda t: "/practice/staff/dora/password-link/",
        _for(302, 404, 302, 404, 404, cli=404),
    ),
    "portal:patient-record": Row(
        "post",
        lambda t: f"/patients/{t.pat.code}/record/",
        _for(302, 302, 302, 404, 404),
        data=lambda t: {"birth_date": "1980-05-17", "assigned_staff": [str(t.hya.pk)]},
    ),
    "portal:set-password": Row("get", lambda t: t.invitation_path, _for(302, 302, 302, 302, 302)),
    "portal:account": Row("get", lambda t: "/account/", _for(302, 200, 200, 200, 200)),
    "portal:passkey-remove": Row(
        "post",
        lambda t: f"/account/passkeys/{t.passkey.pk}/remove/",
        _for(302, 404, 302, 404, 404, cli=404),
    ),
    # Passkey ceremonies (JSON): registration only for a signed-in member (400 without a
    # started ceremony); sign-in completion only between password and second factor (409).
    "otp_webauthn:credential-registration-begin": Row(
        "post", lambda t: "/webauthn/registration/begin/", _for(403, 200, 200, 200, 200)
    ),
    "otp_webauthn:credential-registration-complete": Row(
        "post", lambda t: "/webauthn/registration/complete/", _for(403, 400, 400, 400, 400)
    ),
    "otp_webauthn:credential-authentication-begin": Row(
        "post", lambda t: "/webauthn/authentication/begin/", _for(403, 200, 200, 200, 200)
    ),
    "otp_webauthn:credential-authentication-complete": Row(
        "post", lambda t: "/webauthn/authentication/complete/", _for(403, 409, 409, 409, 409)
    ),
    "otp_webauthn:js-i18n-catalog": Row(
        "get", lambda t: "/webauthn/jsi18n/", _for(200, 200, 200, 200, 200)
    ),
    "portal:staff-reset-otp": Row(
        "post",
        lambda t: "/practice/staff/dora/reset-authenticator/",
        _for(302, 404, 302, 404, 404, cli=404),
    ),
    "shares:list": Row("get", lambda t: "/shares/", _for(302, 200, 200, 200, 200)),
    "shares:request-done": Row(
        "post",
        lambda t: f"/shares/requests/{t.link_request.code}/done/",
        _for(302, 302, 302, 404, 404),
    ),
    "portal:attachment-study": Row(
        "post",
        lambda t: f"/attachments/{t.photo.code}/study/",
        _for(302, 302, 302, 404, 404),
        data=lambda t: {"study": str(t.study.code)},
    ),
    "shares:revoke": Row(
        "post", lambda t: f"/shares/{t.share.code}/revoke/", _for(302, 302, 302, 404, 404)
    ),
    "shares:unlock": Row(
        "post", lambda t: f"/shares/{t.share.code}/unlock/", _for(302, 302, 302, 404, 404)
    ),
    "shares:extend": Row(
        "post",
        lambda t: f"/shares/{t.share.code}/extend/",
        _for(302, 302, 302, 404, 404),
        data=lambda t: {"days": 5},
    ),
    # The viewer serves staff and share recipients; here, the staff side. Front desk (bob)
    # may not open pixel data unless the practice allows it.
    # Whether the sign-in still holds, for a viewer whose image was refused: no patient data.
    "viewer:session": Row(
        "get", lambda t: "/viewer/session/?as=staff", _for(401, 204, 204, 204, 204)
    ),
    "viewer:study": Row(
        "get", lambda t: f"/viewer/studies/{t.study.code}/", _for(302, 404, 200, 404, 404)
    ),
    "viewer:manifest": Row(
        "get",
        lambda t: f"/viewer/series/{t.series.code}/manifest.json",
        _for(404, 404, 200, 404, 404),
    ),
    "viewer:series-document": Row(
        "get",
        lambda t: f"/viewer/series/{t.series.code}/document",
        _for(404, 404, 200, 404, 404),
    ),
    # The matrix's series holds CT images, no video: a 404 (audited) for everyone.
    "viewer:series-video": Row(
        "get",
        lambda t: f"/viewer/series/{t.series.code}/video.mp4",
        _for(404, 404, 404, 404, 404),
    ),
    "viewer:series-thumbnail": Row(
        "get",
        lambda t: f"/viewer/series/{t.series.code}/thumbnail.jpg",
        _for(404, 404, 200, 404, 404),
    ),
    "viewer:tags": Row(
        "get",
        lambda t: f"/viewer/series/{t.series.code}/tags/0.json",
        _for(404, 404, 200, 404, 404),
    ),
    "viewer:slice": Row(
        "get",
        lambda t: f"/viewer/series/{t.series.code}/axial/0.jpg",
        _for(404, 404, 200, 404, 404),
    ),
    "viewer:slice-png": Row(
        "get",
        lambda t: f"/viewer/series/{t.series.code}/axial/1.png",
        _for(404, 404, 200, 404, 404),
    ),
    # A saved picture of one image: the slice rules, and a download.
    "viewer:slice-picture": Row(
        "get",
        lambda t: f"/viewer/series/{t.series.code}/axial/0/picture.jpg",
        _for(404, 404, 200, 404, 404),
    ),
    "viewer:slice-picture-png": Row(
        "get",
        lambda t: f"/viewer/series/{t.series.code}/axial/1/picture.png",
        _for(404, 404, 200, 404, 404),
    ),
    # The dental views: pixels, so the slice rules (a volume without teeth has no arch).
    "viewer:dental-arch": Row(
        "get",
        lambda t: f"/viewer/series/{t.volume.code}/dental/arch.json",
        _for(404, 404, 422, 404, 404),
    ),
    "viewer:dental-path": Row(
        "get",
        lambda t: f"/viewer/series/{t.volume.code}/dental/path.json?{CURVE}",
        _for(404, 404, 200, 404, 404),
    ),
    "viewer:dental-image": Row(
        "get",
        lambda t: f"/viewer/series/{t.volume.code}/dental/panoramic.jpg?{CURVE}",
        _for(404, 404, 200, 404, 404),
    ),
    "viewer:dental-image-png": Row(
        "get",
        lambda t: f"/viewer/series/{t.volume.code}/dental/section.png?{CURVE}&at=1",
        _for(404, 404, 200, 404, 404),
    ),
    "viewer:dental-export": Row(
        "get",
        lambda t: f"/viewer/series/{t.volume.code}/dental/export/panoramic.jpg?{CURVE}",
        _for(404, 404, 200, 404, 404),
    ),
    "viewer:dental-export-png": Row(
        "get",
        lambda t: f"/viewer/series/{t.volume.code}/dental/export/section.png?{CURVE}&at=1",
        _for(404, 404, 200, 404, 404),
    ),
    "viewer:attachment-thumbnail": Row(
        "get",
        lambda t: f"/viewer/attachments/{t.photo.code}/thumbnail.jpg",
        _for(404, 404, 200, 404, 404),
    ),
    "viewer:attachment-file": Row(
        "get",
        lambda t: f"/viewer/attachments/{t.photo.code}/file",
        _for(404, 404, 200, 404, 404),
    ),
}


STAFF_NAMESPACES = ("portal", "shares", "viewer", "otp_webauthn")


def staff_url_names() -> set[str]:
    """Return namespace:name of every URL in the staff namespaces."""
    names = set()
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and entry.namespace in STAFF_NAMESPACES:
            names.update(f"{entry.namespace}:{p.name}" for p in entry.url_patterns)
    return names


class MatrixTestCase(BaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.practice.hygienists_see_assigned_only = True
        self.practice.save()
        self.hy = make_staff("hy", self.practice, Role.HYGIENIST)
        dora = make_staff("dora", self.practice, Role.FRONT_DESK)
        self.invitation_path = urlsplit(invitation_url(dora)).path
        self.cli = make_staff("cli", self.practice, Role.CLINICIAN)
        self.hya = make_staff("hya", self.practice, Role.HYGIENIST)
        self.pat.assigned_staff.add(self.hya)
        self.passkey = WebAuthnCredential.objects.create(
            user=self.alice,
            name="Laptop",
            credential_id=b"matrix-credential",
            public_key=b"not-a-key",
            confirmed=True,
        )
        self.share = issue_link(
            study=self.study, created_by=self.alice, recipient_kind="patient"
        ).share
        self.link_request = LinkRequest.objects.create(
            share=self.share, reason="expired", created_at=self.share.created_at
        )
        self.batch = UploadBatch.objects.create(practice=self.practice, created_by=self.bob)
        self.pending = PendingFile.objects.create(
            practice=self.practice, kind="pdf", reason="test", blob=vault.store_bytes(b"%PDF-")
        )
        self.series = self.study.series.get()
        # The dental views need a volume: slices 1 mm apart.
        self.volume = make_ct_study(
            self.pat, n=4, uid_root="1.2.826.0.1.3680043.10.99"
        ).series.get()
        for z, instance in enumerate(self.volume.instances.order_by("instance_number")):
            instance.image_position = [*instance.image_position[:2], float(z)]
            instance.save(update_fields=["image_position"])
        self.photo, _pdf = add_attachments(self.study)
        self.upload = self.batch.uploads.create(
            practice=self.practice, created_by=self.bob, relative_name="a.dcm", length=10
        )

    def test_every_staff_url_has_a_row(self) -> None:
        self.assertEqual(staff_url_names(), set(MATRIX))

    def test_each_persona_gets_what_its_role_and_practice_allow(self) -> None:
        users = {
            "bob": self.bob,
            "alice": self.alice,
            "hy": self.hy,
            "charlie": self.charlie,
            "cli": self.cli,
            "hya": self.hya,
        }
        for name, row in MATRIX.items():
            for persona in PERSONAS:
                with self.subTest(url=name, persona=persona):
                    self.client.logout()
                    if persona != "anon":
                        self.login(users[persona])
                    call = getattr(self.client, row.method)
                    denials = AccessEvent.objects.filter(outcome=Outcome.DENIED).count()
                    r = call(row.path(self), row.data(self), headers=row.headers(self))
                    self.assertEqual(r.status_code, row.expect[persona])
                    if r.status_code == 404 and persona != "anon":
                        after = AccessEvent.objects.filter(outcome=Outcome.DENIED).count()
                        self.assertGreater(after, denials, "a 404 left no denial record")
                    User.objects.filter(username="dora").update(is_active=True)
