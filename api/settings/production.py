"""Production: every secret from the environment, HTTPS only. `manage.py check --deploy` is
clean under these settings (CI checks it)."""

from django.core.exceptions import ImproperlyConfigured

from api.settings.base import *  # noqa: F403
from api.settings.base import (
    DEV_REFERRAL_KEKS,
    REFERRAL_KEKS,
    SECRET_KEY,
    env_bool,
    env_list,
)

if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be set to at least 50 random characters.")

if REFERRAL_KEKS == DEV_REFERRAL_KEKS:
    raise ImproperlyConfigured("REFERRAL_KEKS must be set: referral data cannot use the dev key.")

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
X_FRAME_OPTIONS = "DENY"
