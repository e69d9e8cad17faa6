"""Email from the templates in templates/emails/: subject, text and HTML body."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def send_templated(name: str, to: str, context: dict) -> None:
    """Send one email from its subject, text and HTML templates (templates/emails/)."""
    subject = render_to_string(f"emails/{name}-subject.txt", context).strip().splitlines()[0]
    text = render_to_string(f"emails/{name}-body.txt", context)
    html = render_to_string(f"emails/{name}-body.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [to])
    message.attach_alternative(html, "text/html")
    message.send()
