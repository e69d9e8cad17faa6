"""Recipient requests refused for want of a usable share session: a 404, always audited."""

from __future__ import annotations

from django.http import Http404, HttpRequest

from portal import access
from portal.access import Scope, scope_for
from sharing import session
from sharing.models import ShareLink


def pending_share(request: HttpRequest) -> ShareLink | None:
    """Return the link this session opened, verified or not, if it still exists."""
    code = session.pending_code(request)
    if not code:
        return None
    return ShareLink.objects.select_related("practice", "patient").filter(code=code).first()


def deny(
    request: HttpRequest,
    reason: str,
    *,
    share: ShareLink | None = None,
    scope: Scope | None = None,
) -> Http404:
    """Audit a refused recipient request (portal.access.deny, model "share"); return the 404."""
    return access.deny(request, scope, "share", reason=reason, share=share)


def recipient_scope(request: HttpRequest) -> Scope:
    """Return the scope of this session's verified share, or audit the refusal and raise 404."""
    # Read before scope_for, which drops the verification of a session that has ended.
    was_verified = session.VERIFIED_KEY in request.session
    scope = scope_for(request)
    if scope is not None and scope.share is not None:
        return scope
    share = pending_share(request)
    if share is None:
        reason = "no_link"
    elif was_verified:
        reason = "session_ended"
    else:
        reason = "not_verified"
    raise deny(request, reason, share=share, scope=scope)
