"""Staff second factors (passkeys), sessions and cookies, transport and security headers."""

from __future__ import annotations

from urllib.parse import urlsplit

from portal.settings.core import LOCAL, OTP_TOTP_ISSUER, PORTAL_BASE_URL, env

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
