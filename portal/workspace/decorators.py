"""Who may call a staff view: a signed-in, second-factor-verified, active staff member."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django_otp.decorators import otp_required

import audit
from audit.models import Action, Outcome
from portal.access import Scope, staff_member


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Require password and second factor, then a staff membership; attach request.scope."""

    @wraps(view)
    def inner(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        member = staff_member(request)
        if member is None:
            if request.user.is_authenticated and request.user.is_verified():
                # Redirecting to sign-in would loop: the account is signed in, just not staff.
                raise PermissionDenied("This account is not a member of any practice.")
            return redirect_to_login(request.get_full_path())
        request.scope = Scope(practice=member.practice, staff=member)
        # Times on staff pages, and in emails sent from them, are the practice's.
        with timezone.override(member.practice.zone):
            return view(request, *args, **kwargs)

    return otp_required(inner)


def practice_admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Allow only the practice's admins; others get a 404 like any object outside scope."""

    @wraps(view)
    def inner(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.scope.can_manage_practice:
            audit.record(
                Action.ACCESS_DENIED,
                request=request,
                outcome=Outcome.DENIED,
                detail={"path_kind": "admin-only", "role": request.scope.staff.role},
                **request.scope.audit_kwargs(),
            )
            raise Http404
        return view(request, *args, **kwargs)

    return staff_required(inner)
