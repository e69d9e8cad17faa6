"""System checks for production settings that Django's own --deploy checks do not cover."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def check_base_url(app_configs, **kwargs) -> list[Error]:
    """Emailed links and handout QR codes need an absolute https address."""
    if settings.LOCAL or settings.PORTAL_BASE_URL.startswith("https://"):
        return []
    return [
        Error(
            "PORTAL_BASE_URL must be the portal's https:// address in production.",
            hint="Set PORTAL_BASE_URL=https://portal.example.com; links in emails use it.",
            id="portal.E001",
        )
    ]


LOCAL_ONLY_MAIL = (
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.console.EmailBackend",
)


@register(Tags.security, deploy=True)
def check_mail_backend(app_configs, **kwargs) -> list[Error]:
    """Share links and sign-in codes must leave by mail, not sit in files or a console log."""
    if settings.LOCAL or settings.EMAIL_BACKEND not in LOCAL_ONLY_MAIL:
        return []
    return [
        Error(
            "EMAIL_BACKEND writes messages to files or the console, with their links in them.",
            hint="Use the SMTP backend in production (the default) and set EMAIL_HOST.",
            id="portal.E002",
        )
    ]
