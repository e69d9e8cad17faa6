"""WSGI entry point; production mode unless PORTAL_MODE says otherwise."""

import os

import django
from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("PORTAL_MODE", "production")

django.setup(set_prefix=False)

from portal.deployment import refuse_to_start_if_misconfigured  # noqa: E402 - needs settings
from portal.request_bodies import paced_bodies  # noqa: E402

refuse_to_start_if_misconfigured()
application = paced_bodies(get_wsgi_application())
# Import every view now (pydicom, numpy and Pillow with them) rather than in some
# recipient's first request; with gunicorn's preload_app the workers inherit it all.
get_resolver().url_patterns  # noqa: B018
