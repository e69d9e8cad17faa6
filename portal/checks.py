"""System checks for production settings that Django's own --deploy checks do not cover."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def check_production_settings(app_configs, **kwargs) -> list[Error]:
    """Report each setting production lacks or has unsafe (portal.deployment lists them)."""
    return [
        Error(problem.message, id=problem.check_id)
        for problem in getattr(settings, "PORTAL_CONFIG_PROBLEMS", [])
    ]
