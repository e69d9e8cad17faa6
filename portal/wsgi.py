"""WSGI entry point; production mode unless PORTAL_MODE says otherwise."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("PORTAL_MODE", "production")

application = get_wsgi_application()
