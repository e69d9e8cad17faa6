"""The services the portal talks to: object storage, the task broker, the cache, mail; logs."""

from __future__ import annotations

from portal.settings.core import DATA_DIR, LOCAL, env, read_secret

# Encrypted object storage: every byte written here goes through portal.vault.
if env.str("AWS_STORAGE_BUCKET_NAME", default=""):
    _vault_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": read_secret("AWS_ACCESS_KEY_ID"),
            "secret_key": read_secret("AWS_SECRET_ACCESS_KEY"),
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
elif LOCAL:
    _vault_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": str(DATA_DIR / "vault"),
            "directory_permissions_mode": 0o700,
            "file_permissions_mode": 0o600,
        },
    }
else:
    _vault_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env.str("PORTAL_VAULT_DIR", default=str(DATA_DIR / "vault"))},
    }
# Where an object bound for the object store waits, as ciphertext, while it uploads (beyond
# 16 MiB): a disk with room for the largest files at once; empty means the system's temp folder.
PORTAL_VAULT_SPOOL_DIR = env.str("PORTAL_VAULT_SPOOL_DIR", default="")
STORAGES = {
    "default": _vault_storage,
    "vault": _vault_storage,
    # Production serves files under content-hashed names, cached by browsers for a year.
    "staticfiles": {
        "BACKEND": "portal.staticfiles.StaticStorage"
        if not LOCAL
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Celery: eager on a laptop; a real broker (Redis or RabbitMQ) in production.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL == "memory://"
)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
# A task whose worker died goes to another worker after this long (Redis holds it unacked
# until then): longer than any task runs.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("PORTAL_TASK_VISIBILITY_SECONDS", default=3600),
    # How often workers look for such tasks (Redis; kombu's own default otherwise).
    **(
        {"unacked_restore_interval": env.int("PORTAL_TASK_RESTORE_SECONDS"),
         "unacked_restore_throttle": 1}
        if env.str("PORTAL_TASK_RESTORE_SECONDS", default="")
        else {}
    ),
}  # fmt: skip
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_BEAT_SCHEDULE = {
    "verify-audit": {"task": "audit.tasks.verify_and_checkpoint", "schedule": 24 * 3600},
    "notify-baas": {"task": "portal.compliance.tasks.notify_baas", "schedule": 24 * 3600},
    "scan-alerts": {"task": "portal.compliance.tasks.scan_alerts", "schedule": 60},
    # Instances a DICOM receiver acknowledged before it died (see PORTAL_DICOM_RECEIPT_GRACE).
    "file-dicom-receipts": {"task": "portal.dicomnet.tasks.file_receipts", "schedule": 300},
    "enforce-retention": {
        "task": "portal.compliance.tasks.enforce_retention",
        "schedule": 24 * 3600,
    },
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if env.str("REDIS_URL", default=""):
    CACHES["default"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("REDIS_URL"),
        "KEY_PREFIX": env.str("PORTAL_CACHE_PREFIX", default="portal"),
    }

EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if LOCAL
    else "django.core.mail.backends.smtp.EmailBackend",
)
# With EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend, one file a message.
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(DATA_DIR / "mail"))
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = read_secret("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {
        "outages": {"()": "portal.errors.OneLineForOutages"},
        "quiet": {"()": "portal.errors.QuietLibrary"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "quiet_console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["quiet"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # The request logger prints paths; share paths never carry a token after the redirect,
        # and /s/<token> itself is logged by portal.middleware with the token masked.
        "django.server": {"handlers": [], "propagate": False},
        "django.request": {
            "handlers": ["console"],
            "level": "ERROR",
            "propagate": False,
            "filters": ["outages"],
        },
        # A hostile request (too many fields, a bad Host) is one line, never a traceback, and
        # each kind at most once a minute: a script must not fill the log.
        "django.security": {"handlers": ["quiet_console"], "propagate": False},
        # pynetdicom's debug output would dump received data sets (patient data) into logs;
        # its warnings and errors come without tracebacks, each kind once a minute.
        "pynetdicom": {"level": "WARNING", "handlers": ["quiet_console"], "propagate": False},
        # On a laptop Celery runs tasks inline: their chatter would bury the demo's output.
        **(
            {"celery": {"level": "WARNING"}, "kombu.connection": {"level": "ERROR"}}
            if LOCAL
            else {}
        ),
    },
}
