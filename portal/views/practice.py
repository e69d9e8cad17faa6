"""Practice admins: the practice's settings and its staff (roles, deactivation)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

import audit
from audit.models import Action
from portal.access import fetch_or_404
from portal.decorators import practice_admin_required
from portal.forms import PracticeSettingsForm, StaffRoleForm
from portal.models import BackupCodeDevice, Role, StaffMember
from portal.sessions import end_sessions_of


@require_http_methods(["GET", "POST"])
@practice_admin_required
def practice_settings(request: HttpRequest) -> HttpResponse:
    """Edit link expiry defaults, the idle timeout and the two minimum-necessary switches."""
    practice = request.scope.practice
    form = PracticeSettingsForm(request.POST or None, instance=practice)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Settings saved.")
        return redirect("portal:practice-settings")
    return render(request, "portal/practice_settings.html", {"form": form})


def _staff(request: HttpRequest):
    return StaffMember.objects.filter(practice=request.scope.practice).select_related("user")


def _member(request: HttpRequest, username: str) -> StaffMember:
    return fetch_or_404(request, request.scope, _staff(request), user__username=username)


@require_http_methods(["GET"])
@practice_admin_required
def staff_list(request: HttpRequest) -> HttpResponse:
    """List the practice's staff with their role and whether they may sign in."""
    return render(
        request,
        "portal/staff_list.html",
        {"members": _staff(request), "roles": Role.choices},
    )


@require_POST
@practice_admin_required
def change_role(request: HttpRequest, username: str) -> HttpResponse:
    """Give a staff member another role; an admin cannot demote themselves."""
    member = _member(request, username)
    form = StaffRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role from the list.")
    elif member.user_id == request.user.pk:
        messages.error(request, "You cannot change your own role; ask another admin.")
    else:
        member.role = form.cleaned_data["role"]
        member.save(update_fields=["role"])
        messages.success(
            request, f"{member.user.get_username()} is now {member.get_role_display()}."
        )
    return redirect("portal:staff-list")


@require_POST
@practice_admin_required
def set_active(request: HttpRequest, username: str) -> HttpResponse:
    """Deactivate (ending all their sessions) or reactivate a staff member."""
    member = _member(request, username)
    user = member.user
    if user.pk == request.user.pk:
        messages.error(request, "You cannot deactivate yourself.")
        return redirect("portal:staff-list")
    user.is_active = request.POST.get("active") == "1"
    user.save(update_fields=["is_active"])
    messages.success(
        request,
        f"{user.get_username()} can sign in again."
        if user.is_active
        else f"{user.get_username()} is deactivated and signed out everywhere.",
    )
    return redirect("portal:staff-list")


@require_POST
@practice_admin_required
def reset_authenticator(request: HttpRequest, username: str) -> HttpResponse:
    """Remove a member's authenticator and backup codes (lost phone); they enrol again."""
    member = _member(request, username)
    user = member.user
    TOTPDevice.objects.filter(user=user).delete()
    BackupCodeDevice.objects.filter(user=user).delete()
    end_sessions_of(user.pk)
    audit.record(
        Action.STAFF_CHANGE,
        request=request,
        practice=member.practice,
        detail={"member": user.pk, "change": "authenticator reset"},
    )
    messages.success(
        request,
        f"{user.get_username()} sets up a new authenticator at their next sign-in.",
    )
    return redirect("portal:staff-list")
