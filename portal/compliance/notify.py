"""Emails to a practice's admins about compliance matters: never any patient data in them."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from portal.models import Practice, Role, StaffMember


def admin_emails(practice: Practice) -> list[str]:
    """Return the addresses of the practice's active admins."""
    members = StaffMember.objects.filter(
        practice=practice, role=Role.ADMIN, user__is_active=True
    ).exclude(user__email="")
    return sorted(set(members.values_list("user__email", flat=True)))


def send_to_admins(name: str, practice: Practice, context: dict) -> int:
    """Send the email `templates/emails/<name>-*` to the practice's admins; return how many."""
    recipients = admin_emails(practice)
    if not recipients:
        return 0
    context = {**context, "practice": practice, "base_url": settings.PORTAL_BASE_URL.rstrip("/")}
    subject = render_to_string(f"emails/{name}-subject.txt", context).strip().splitlines()[0]
    text = render_to_string(f"emails/{name}-body.txt", context)
    html = render_to_string(f"emails/{name}-body.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, recipients)
    message.attach_alternative(html, "text/html")
    message.send()
    return len(recipients)
