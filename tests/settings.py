"""Test settings: laptop mode in a throwaway data directory, fast hashing, eager tasks.

Integration tests opt into real services through DATABASE_URL, REDIS_URL and friends.
"""

import os
import tempfile

os.environ.setdefault("PORTAL_MODE", "local")
os.environ.setdefault("PORTAL_DATA_DIR", tempfile.mkdtemp(prefix="portal-test-"))
# Send onward's tests use Orthanc on this host as the destination (portal.dicomnet.destinations).
os.environ.setdefault("PORTAL_DICOM_DESTINATION_NETWORKS", "127.0.0.0/8")

from portal.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# A file-backed SQLite test database, so a real Celery worker process can share it.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}  # noqa: F405
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    # Flushing between tests goes past the access history's TRUNCATE trigger (see there).
    DATABASES["default"]["ENGINE"] = "tests.postgresql"  # noqa: F405
