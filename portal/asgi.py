"""ASGI entry point; production mode unless PORTAL_MODE says otherwise."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("PORTAL_MODE", "production")

application = get_asgi_application()
