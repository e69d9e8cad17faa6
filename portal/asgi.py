"""ASGI entry point; production mode unless PORTAL_MODE says otherwise."""

import os

import django
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("PORTAL_MODE", "production")

django.setup(set_prefix=False)

from portal.deployment import refuse_to_start_if_misconfigured  # noqa: E402 - needs settings

refuse_to_start_if_misconfigured()
application = get_asgi_application()
