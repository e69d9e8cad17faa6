"""The recipient's "open in your own viewer": make, show once, and revoke software tokens."""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal.access import Scope, fetch_or_404
from portal.workspace import once
from sharing.denials import recipient_scope
from sharing.dicomweb.tokens import create_token, revoke_token
from sharing.models import ShareLink, SoftwareToken


def endpoint(request: HttpRequest) -> str:
    """Return the share's DICOMweb base address as the recipient's software should use it."""
    return request.build_absolute_uri("/dicomweb")


def pasteable(base: str, token: str) -> str:
    """Return the base address with the token as password, for viewers that take one URL.

    Clients send user information as an Authorization header, never in the request line, so
    the token stays out of server logs.
    """
    parts = urlsplit(base)
    netloc = f"token:{quote(token, safe='')}@{parts.netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def weasis_link(base: str, study_uid: str, token: str) -> str:
    """Return a weasis:// launch that reads the study from DICOMweb with the token."""
    command = (
        f'$dicom:rs --url "{base}" -r "studyUID={study_uid}" -H "Authorization: Bearer {token}"'
    )
    return "weasis://?" + quote(command, safe="")


def _verified(request: HttpRequest) -> tuple[ShareLink, Scope]:
    scope = recipient_scope(request)
    return scope.share, scope


ALREADY_MADE = (
    "That form was already sent: the token it made was shown once, then. If it was not "
    "copied, revoke it below and make another."
)


def _page(request: HttpRequest, share: ShareLink, status: int = 200, **extra) -> HttpResponse:
    tokens = share.tokens.order_by("-created_at")
    context = {"share": share, "practice": share.practice, "tokens": tokens,
               "issue_key": once.new_key(), **extra}  # fmt: skip
    return render(request, "sharing/software.html", context, status=status)


@never_cache
def software_access(request: HttpRequest) -> HttpResponse:
    """List this link's software tokens and offer to make one."""
    share, _ = _verified(request)
    return _page(request, share)


@never_cache
@require_POST
def create_software_token(request: HttpRequest) -> HttpResponse:
    """Make a token and show it, its DICOMweb address and a Weasis launch, this once."""
    share, scope = _verified(request)
    if not scope.can_download:
        return _page(request, share, error="Downloads are not available for this link.", status=403)
    # The form carries a one-time key (portal.workspace.once): sent again (a reload of the
    # page that showed the token, a double click), it makes no second token.
    try:
        with transaction.atomic():
            if not once.first_time(request, request.POST.get(once.FIELD, "")[:64]):
                return _page(request, share, error=ALREADY_MADE, status=409)
            token, raw = create_token(
                share, label=request.POST.get("label", "").strip(), request=request
            )
    except ValidationError as exc:
        return _page(request, share, error=exc.messages[0], status=400)
    base = endpoint(request)
    return _page(
        request,
        share,
        new_token=raw,
        new_code=token.code,
        base=base,
        pasteable=pasteable(base, raw),
        weasis=weasis_link(base, share.study.study_uid, raw),
    )


@require_POST
def revoke_software_token(request: HttpRequest, code) -> HttpResponse:
    share, scope = _verified(request)
    token = fetch_or_404(request, scope, SoftwareToken.objects.filter(share=share), code=code)
    revoke_token(token, request=request)
    response = HttpResponse(status=303)
    response["Location"] = "/s/software/"
    return response
