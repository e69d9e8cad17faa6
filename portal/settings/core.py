"""The portal's core settings: mode, data folder, secrets and keys, apps, database, static files.

The other parts (portal.settings.security, .services, .limits) read the mode and secrets
from here; portal.settings puts them together.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from audit.keys import load_audit_key
from portal import deployment
from portal.vault.keys import keep_private, load_keys, load_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

PORTAL_MODE = env.str("PORTAL_MODE", default="production")
if PORTAL_MODE not in ("local", "production"):
    raise ImproperlyConfigured("PORTAL_MODE must be 'local' or 'production'.")
LOCAL = PORTAL_MODE == "local"

DATA_DIR = Path(env.str("PORTAL_DATA_DIR", default=str(BASE_DIR / "data"))).resolve()
if LOCAL:
    keep_private(DATA_DIR)


# What keeps production from starting, found while reading secrets (see portal.deployment).
startup_problems: list[deployment.Problem] = []


def read_secret(name: str) -> str | None:
    """Return a secret from NAME or the file named by NAME_FILE."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            message = f"{name}_FILE={path} cannot be read ({exc.strerror}): check the path"
            if LOCAL:
                raise ImproperlyConfigured(message) from None
            startup_problems.append(deployment.Problem("portal.E018", message))
            return None
    return env.str(name, default="") or None


def secret_file_unreadable(name: str) -> bool:
    return any(p.message.startswith(f"{name}_FILE=") for p in startup_problems)


try:
    SECRET_KEY = load_secret_key(read_secret("SECRET_KEY"), DATA_DIR, LOCAL)
except ImproperlyConfigured as exc:
    if LOCAL:
        raise
    SECRET_KEY = secrets.token_urlsafe(50)  # never used: the start is refused
    if not secret_file_unreadable("SECRET_KEY"):
        startup_problems.append(deployment.Problem("portal.E016", str(exc)))
try:
    PORTAL_KEYS = load_keys(read_secret("PORTAL_KEYS"), DATA_DIR, LOCAL)
except ImproperlyConfigured as exc:
    if LOCAL:
        raise
    PORTAL_KEYS = {}  # nothing can be sealed or opened; the start is refused
    if not secret_file_unreadable("PORTAL_KEYS"):
        startup_problems.append(deployment.Problem("portal.E017", str(exc)))
PORTAL_CURRENT_KEY_ID = next(iter(PORTAL_KEYS), "")
# The access history's chain key and checkpoint signing key (audit/keys.py), outside the database.
_audit_keys = {}
for _name, _check in (
    ("PORTAL_AUDIT_KEY", "portal.E019"),
    ("PORTAL_AUDIT_SIGNING_KEY", "portal.E020"),
):
    try:
        _audit_keys[_name] = load_audit_key(_name, read_secret(_name), DATA_DIR, LOCAL)
    except ImproperlyConfigured as exc:
        if LOCAL:
            raise
        _audit_keys[_name] = secrets.token_bytes(32)  # never used: the start is refused
        startup_problems.append(deployment.Problem(_check, str(exc)))
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
    "portal.middleware.refuse_nul_bytes",
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
                "sharing.waiting.waiting_for_staff",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "builtins": ["portal.templatetags.sizes"],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'portal.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# A password kept out of DATABASE_URL (the compose file gives it as a secret file).
if read_secret("DATABASE_PASSWORD"):
    DATABASES["default"]["PASSWORD"] = read_secret("DATABASE_PASSWORD")
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
