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
