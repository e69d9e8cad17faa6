"""Settings read from the environment (django-environ).

PORTAL_MODE=local (the default of manage.py) is a laptop: SQLite, encrypted local storage and keys
under PORTAL_DATA_DIR, Celery tasks run eagerly. Anything else is production: every secret and
service must come from the environment, and a missing or unsafe one refuses the start with a
line naming it (portal.deployment).
"""

from __future__ import annotations

import os

from portal import deployment
from portal.settings.core import *  # noqa: F403
from portal.settings.core import (
    ALLOWED_HOSTS,
    DATABASES,
    DEBUG,
    LOCAL,
    PORTAL_BASE_URL,
    startup_problems,
)
from portal.settings.limits import *  # noqa: F403
from portal.settings.security import *  # noqa: F403
from portal.settings.services import *  # noqa: F403
from portal.settings.services import EMAIL_BACKEND

# What keeps production from starting; see portal.deployment.
PORTAL_CONFIG_PROBLEMS = (
    []
    if LOCAL
    else [
        *startup_problems,
        *deployment.problems(
            os.environ,
            {
                "database_engine": DATABASES["default"]["ENGINE"],
                "allowed_hosts": ALLOWED_HOSTS,
                "base_url": PORTAL_BASE_URL,
                "email_backend": EMAIL_BACKEND,
                "debug": DEBUG,
            },
        ),
    ]
)
