"""Practice admins: the practice's settings and its staff (roles, deactivation)."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

import audit
from audit.models import Action
from portal.access import fetch_or_404
from portal.models import BackupCodeDevice, Role, StaffMember
from portal.workspace import signin_throttle
from portal.workspace.decorators import practice_admin_required
from portal.workspace.forms import NewStaffForm, PracticeSettingsForm, StaffRoleForm
from portal.workspace.sessions import end_sessions_of
from portal.workspace.views.auth import invitation_url


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


def _audit_change(request: HttpRequest, member: StaffMember, change: str) -> None:
    audit.record(
        Action.STAFF_CHANGE,
        request=request,
        detail={"member": member.user_id, "change": change},
        **request.scope.audit_kwargs(),
    )


@require_http_methods(["GET", "POST"])
@practice_admin_required
def add_staff(request: HttpRequest) -> HttpResponse:
    """Create a staff account and email the member a link to choose their own password.

    Nobody else ever knows the password; the authenticator is set up at first sign-in.
    """
    form = NewStaffForm(request.POST or None, practice=request.scope.practice)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        first, _, last = data["full_name"].strip().partition(" ")
        with transaction.atomic():
            user = User.objects.create_user(
                data["username"], data["email"], None, first_name=first, last_name=last
            )
            member = StaffMember.objects.create(
                user=user, practice=request.scope.practice, role=data["role"]
            )
            _audit_change(request, member, f"created as {member.role}")
        messages.success(request, f"{user.get_username()} is added; they sign in with that name.")
        _invite(request, member)
        return redirect("portal:staff-list")
    status = 400 if form.is_bound else 200
    return render(request, "portal/staff_add.html", {"form": form}, status=status)


@require_POST
@practice_admin_required
def send_password_link(request: HttpRequest, username: str) -> HttpResponse:
    """Email a member a new set-password link (a lost password, or a lost invitation)."""
    member = _member(request, username)
    _invite(request, member)
    return redirect("portal:staff-list")


def _invite(request: HttpRequest, member: StaffMember) -> None:
    user = member.user
    if not user.email:
        messages.error(
            request,
            f"{user.get_username()} has no email address on file; ask the portal's "
            "operator to add one, then send the link again.",
        )
        return
    try:
        send_invitation(member)
    except (OSError, smtplib.SMTPException):
        messages.error(
            request,
            f"The email to {user.email} could not be sent; check the mail settings, "
            "then use Send password link.",
        )
        return
    _audit_change(request, member, "password link sent")
    messages.success(
        request, f"A link to choose a password went to {user.email}; it works for 3 days."
    )


def send_invitation(member: StaffMember) -> None:
    """Email the new member the address where they choose a password."""
    context = {"practice": member.practice, "user": member.user, "url": invitation_url(member.user)}
    subject = render_to_string("emails/staff-invite-subject.txt", context).strip()
    text = render_to_string("emails/staff-invite-body.txt", context)
    send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, [member.user.email])


@require_http_methods(["GET"])
@practice_admin_required
def staff_list(request: HttpRequest) -> HttpResponse:
    """List the practice's staff with their role and whether they may sign in."""
    members = list(_staff(request))
    for member in members:
        member.sign_in_paused_until = signin_throttle.paused_until(member.user.get_username())
    return render(request, "portal/staff_list.html", {"members": members, "roles": Role.choices})


@require_POST
@practice_admin_required
def lift_sign_in_pause(request: HttpRequest, username: str) -> HttpResponse:
    """Let a member sign in from new browsers again after failed attempts paused it."""
    member = _member(request, username)
    signin_throttle.lift(member.user.get_username())
    _audit_change(request, member, "sign-in pause lifted")
    messages.success(request, f"{member.user.get_username()} can sign in from any browser again.")
    return redirect("portal:staff-list")


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
        _audit_change(request, member, f"role {member.role}")
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
    _audit_change(request, member, "reactivated" if user.is_active else "deactivated")
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
    WebAuthnCredential.objects.filter(user=user).delete()
    end_sessions_of(user.pk)
    _audit_change(request, member, "authenticator reset")
    messages.success(
        request,
        f"{user.get_username()} sets up a new authenticator at their next sign-in.",
    )
    return redirect("portal:staff-list")
