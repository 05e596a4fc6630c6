"""Production: every secret from the environment, HTTPS only. `manage.py check --deploy` is
clean under these settings (CI checks it)."""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from api.settings.base import *  # noqa: F403
from api.settings.base import (
    DEV_REFERRAL_KEKS,
    REFERRAL_KEKS,
    SECRET_KEY,
    VAR_DIR,
    env_bool,
    env_list,
)

if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be set to at least 50 random characters.")

if REFERRAL_KEKS == DEV_REFERRAL_KEKS:
    raise ImproperlyConfigured("REFERRAL_KEKS must be set: referral data cannot use the dev key.")

if not os.environ.get("REFERRAL_KEYRING_DIR"):
    raise ImproperlyConfigured(
        "REFERRAL_KEYRING_DIR must be set: the epoch keys live there, outside the database and "
        "its backups (docs/DATA.md). `check --deploy` checks the directory itself."
    )

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

# Static files: `manage.py collectstatic --no-input` (with each release, like `migrate`) writes
# hashed, gzipped copies here, and WhiteNoise serves only those, cached by clients for good.
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or VAR_DIR / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "api.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = False
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
