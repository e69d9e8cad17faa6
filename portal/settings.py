"""Settings read from the environment (django-environ).

PORTAL_MODE=local (the default of manage.py) is a laptop: SQLite, encrypted local storage and keys
under PORTAL_DATA_DIR, Celery tasks run eagerly. Anything else is production: every secret and
service must come from the environment, and a missing or unsafe one refuses the start with a
line naming it (portal.deployment).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from audit.keys import load_audit_key
from portal import deployment
from portal.vault.keys import keep_private, load_keys, load_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

PORTAL_MODE = env.str("PORTAL_MODE", default="production")
if PORTAL_MODE not in ("local", "production"):
    raise ImproperlyConfigured("PORTAL_MODE must be 'local' or 'production'.")
LOCAL = PORTAL_MODE == "local"

DATA_DIR = Path(env.str("PORTAL_DATA_DIR", default=str(BASE_DIR / "data"))).resolve()
if LOCAL:
    keep_private(DATA_DIR)


_problems: list[deployment.Problem] = []


def _secret(name: str) -> str | None:
    """Return a secret from NAME or the file named by NAME_FILE."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            message = f"{name}_FILE={path} cannot be read ({exc.strerror}): check the path"
            if LOCAL:
                raise ImproperlyConfigured(message) from None
            _problems.append(deployment.Problem("portal.E018", message))
            return None
    return env.str(name, default="") or None


def _secret_file_unreadable(name: str) -> bool:
    return any(p.message.startswith(f"{name}_FILE=") for p in _problems)


try:
    SECRET_KEY = load_secret_key(_secret("SECRET_KEY"), DATA_DIR, LOCAL)
except ImproperlyConfigured as exc:
    if LOCAL:
        raise
    SECRET_KEY = secrets.token_urlsafe(50)  # never used: the start is refused
    if not _secret_file_unreadable("SECRET_KEY"):
        _problems.append(deployment.Problem("portal.E016", str(exc)))
try:
    PORTAL_KEYS = load_keys(_secret("PORTAL_KEYS"), DATA_DIR, LOCAL)
except ImproperlyConfigured as exc:
    if LOCAL:
        raise
    PORTAL_KEYS = {}  # nothing can be sealed or opened; the start is refused
    if not _secret_file_unreadable("PORTAL_KEYS"):
        _problems.append(deployment.Problem("portal.E017", str(exc)))
PORTAL_CURRENT_KEY_ID = next(iter(PORTAL_KEYS), "")
# The access history's chain key and checkpoint signing key (audit/keys.py), outside the database.
_audit_keys = {}
for _name, _check in (
    ("PORTAL_AUDIT_KEY", "portal.E019"),
    ("PORTAL_AUDIT_SIGNING_KEY", "portal.E020"),
):
    try:
        _audit_keys[_name] = load_audit_key(_name, _secret(_name), DATA_DIR, LOCAL)
    except ImproperlyConfigured as exc:
        if LOCAL:
            raise
        _audit_keys[_name] = secrets.token_bytes(32)  # never used: the start is refused
        _problems.append(deployment.Problem(_check, str(exc)))
PORTAL_AUDIT_KEY = _audit_keys["PORTAL_AUDIT_KEY"]
PORTAL_AUDIT_SIGNING_KEY = _audit_keys["PORTAL_AUDIT_SIGNING_KEY"]
# Who receives the daily signed checkpoint of the access history by email (comma list).
PORTAL_AUDIT_CHECKPOINT_EMAILS = env.list("PORTAL_AUDIT_CHECKPOINT_EMAILS", default=[])

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if LOCAL else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000" if LOCAL else "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp_webauthn",
    "auditlog",
    "csp",
    "portal",
    "audit",
    "sharing",
    "viewer",
]

MIDDLEWARE = [
    "portal.middleware.health_checks",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "portal.middleware.same_origin_fetch_metadata",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.workspace.sessions.staff_session_timeouts",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.middleware.CSPMiddleware",
    "portal.middleware.security_headers",
    "portal.middleware.cross_site_navigation_bounce",
    "portal.middleware.AuditlogMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'portal.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# A password kept out of DATABASE_URL (the compose file gives it as a secret file).
if _secret("DATABASE_PASSWORD"):
    DATABASES["default"]["PASSWORD"] = _secret("DATABASE_PASSWORD")
# Each web thread keeps its connection: opening one costs more than serving a warm slice.
# A connection that failed is dropped at the end of its request, so a database restart
# costs the requests in flight, not the process.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0 if LOCAL else 300)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    # WAL lets readers (viewers) proceed while an upload writes; NORMAL syncs at checkpoints.
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "portal.workspace.auth_backends.StaffModelBackend",
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
OTP_LOGIN_URL = "portal:login"
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Image Portal")

# Passkeys, an optional second factor beside the authenticator app. A passkey belongs to a
# domain name (its relying party), never to an IP address, and only pages at the allowed
# origins (https, or http://localhost) may use one: in production the host of an https
# PORTAL_BASE_URL; on a laptop http://localhost:<port> (open the portal there to add one).
# Without an allowed origin the portal simply does not offer passkeys.
_base = urlsplit(PORTAL_BASE_URL)
if LOCAL:
    _passkey_host, _passkey_origins = "localhost", [f"http://localhost:{_base.port or 8000}"]
elif _base.scheme == "https" and _base.hostname:
    _passkey_host, _passkey_origins = _base.hostname, [f"https://{_base.netloc}"]
else:
    _passkey_host, _passkey_origins = "", []
OTP_WEBAUTHN_RP_ID = env.str("PORTAL_PASSKEY_RP_ID", default=_passkey_host)
OTP_WEBAUTHN_RP_NAME = OTP_TOTP_ISSUER
OTP_WEBAUTHN_ALLOWED_ORIGINS = env.list("PORTAL_PASSKEY_ORIGINS", default=_passkey_origins)
if not OTP_WEBAUTHN_RP_ID or not OTP_WEBAUTHN_ALLOWED_ORIGINS:
    SILENCED_SYSTEM_CHECKS = ["otp_webauthn.E010", "otp_webauthn.E030"]
else:
    SILENCED_SYSTEM_CHECKS = []
# security.W021 asks for HSTS preloading, which stays the operator's choice (see above).
SILENCED_SYSTEM_CHECKS.append("security.W021")
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = (
    None if LOCAL else env.str("PORTAL_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
)
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
WHITENOISE_USE_FINDERS = LOCAL

# Encrypted object storage: every byte written here goes through portal.vault.
if env.str("AWS_STORAGE_BUCKET_NAME", default=""):
    _vault_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": _secret("AWS_ACCESS_KEY_ID"),
            "secret_key": _secret("AWS_SECRET_ACCESS_KEY"),
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
EMAIL_HOST_PASSWORD = _secret("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")

# Sessions and cookies.
SESSION_ENGINE = "portal.workspace.session_store"
# Read sessions through Redis when there is one (portal.workspace.session_store explains).
PORTAL_SESSION_CACHE = env.bool("PORTAL_SESSION_CACHE", default=bool(env.str("REDIS_URL", "")))
SESSION_COOKIE_AGE = 12 * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
# Strict: the session never rides on a request another site started. A link followed from
# webmail arrives without it; portal.middleware.cross_site_navigation_bounce reloads such a
# page from our own origin, and the cookie comes back.
SESSION_COOKIE_SAMESITE = "Strict"
SESSION_COOKIE_SECURE = not LOCAL
SESSION_COOKIE_NAME = "portal_session" if LOCAL else "__Host-portal_session"
CSRF_COOKIE_SECURE = not LOCAL
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_NAME = "portal_csrf" if LOCAL else "__Host-portal_csrf"
STAFF_IDLE_TIMEOUT_MINUTES = 15
STAFF_ABSOLUTE_SESSION_HOURS = 12
RECIPIENT_IDLE_TIMEOUT_MINUTES = 10
RECIPIENT_ABSOLUTE_SESSION_HOURS = 2

# Transport and headers.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if not LOCAL else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not LOCAL)
SECURE_HSTS_SECONDS = 0 if LOCAL else env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not LOCAL
# Preloading is a lasting commitment of the whole domain to browsers' lists: the operator's call.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
USE_X_FORWARDED_FOR = env.bool("USE_X_FORWARDED_FOR", default=False)
PORTAL_TRUSTED_PROXY_HOPS = env.int("PORTAL_TRUSTED_PROXY_HOPS", default=1)

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "frame-src": ["'self'"],
    }
}

# Staff sign-in is throttled by portal.workspace.signin_throttle (in the database).

# Upload and ingest limits, enforced before work is done.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 2**20
FILE_UPLOAD_MAX_MEMORY_SIZE = 2**20
# Never spool a multipart file to a plaintext temp file; uploads go through tus, encrypted.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
PORTAL_MAX_FILE_BYTES = env.int("PORTAL_MAX_FILE_BYTES", default=4 * 2**30)
PORTAL_MAX_ARCHIVE_MEMBERS = env.int("PORTAL_MAX_ARCHIVE_MEMBERS", default=20000)
PORTAL_MAX_ARCHIVE_BYTES = env.int("PORTAL_MAX_ARCHIVE_BYTES", default=16 * 2**30)
PORTAL_MAX_IMAGE_PIXELS = env.int("PORTAL_MAX_IMAGE_PIXELS", default=100_000_000)
# DICOM: rows x columns x samples of a frame stay under PORTAL_MAX_IMAGE_PIXELS; these bound
# rows x columns x frames x samples of one file and of one series (checked before decoding).
PORTAL_MAX_DICOM_PIXELS = env.int("PORTAL_MAX_DICOM_PIXELS", default=2**30)
PORTAL_MAX_SERIES_PIXELS = env.int("PORTAL_MAX_SERIES_PIXELS", default=2 * 2**30)

# The DICOM receiver (manage.py dicom_receiver): where it listens, how many senders at once.
PORTAL_DICOM_HOST = env.str("PORTAL_DICOM_HOST", default="127.0.0.1")
PORTAL_DICOM_PORT = env.int("PORTAL_DICOM_PORT", default=11112)
PORTAL_DICOM_MAX_ASSOCIATIONS = env.int("PORTAL_DICOM_MAX_ASSOCIATIONS", default=16)
# Receipts (instances acknowledged, not yet filed) older than this belong to no live
# association: the periodic task files them (a live one files its own every minute).
PORTAL_DICOM_RECEIPT_GRACE_SECONDS = env.int("PORTAL_DICOM_RECEIPT_GRACE_SECONDS", default=600)
# Upload links: most bytes one link takes in (all sends), and one send (held in memory).
PORTAL_UPLOAD_LINK_MAX_BYTES = env.int("PORTAL_UPLOAD_LINK_MAX_BYTES", default=4 * 2**30)
PORTAL_UPLOAD_LINK_MAX_REQUEST_BYTES = env.int(
    "PORTAL_UPLOAD_LINK_MAX_REQUEST_BYTES", default=512 * 2**20
)
# A BAA's signed document, encrypted into the vault as it is uploaded through the admin.
PORTAL_BAA_DOCUMENT_MAX_BYTES = env.int("PORTAL_BAA_DOCUMENT_MAX_BYTES", default=50 * 2**20)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"outages": {"()": "portal.errors.OneLineForOutages"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
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
        # pynetdicom's debug output would dump received data sets (patient data) into logs.
        "pynetdicom": {"level": "WARNING"},
        # On a laptop Celery runs tasks inline: their chatter would bury the demo's output.
        **(
            {"celery": {"level": "WARNING"}, "kombu.connection": {"level": "ERROR"}}
            if LOCAL
            else {}
        ),
    },
}

# Viewer: decoded pixels and encoded images are cached in each web process's memory only,
# never on disk. A 450-slice 512x512 CBCT takes 236 MB decoded, twice that once sagittal
# cuts have their transposed copy; budget (pixels + images) x web processes of memory.
PORTAL_VIEWER_CACHE_BYTES = env.int("PORTAL_VIEWER_CACHE_BYTES", default=1024 * 2**20)
PORTAL_VIEWER_IMAGE_CACHE_BYTES = env.int("PORTAL_VIEWER_IMAGE_CACHE_BYTES", default=64 * 2**20)

# What keeps production from starting; see portal.deployment.
PORTAL_CONFIG_PROBLEMS = (
    []
    if LOCAL
    else [
        *_problems,
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
