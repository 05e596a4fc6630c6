"""The test suite's settings: real PostgreSQL from DATABASE_URL, loopback webhook receivers."""

import os

os.environ.setdefault("ALLOW_LOOPBACK_WEBHOOKS", "1")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")

from api.settings.base import *  # noqa: F403

SECRET_KEY = "test-only-key"
DEBUG = False
ALLOWED_HOSTS = ["*"]
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "api.hashers.ClientSecretHasher",
]
# Each test client builds its own middleware chain: WhiteNoise looks a static file up when it is
# asked for instead of indexing every app's static files for every client.
WHITENOISE_AUTOREFRESH = True
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {
        **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],  # noqa: F405
        "application": "100000/min",
        "token": "100000/min",
        "claim": "100000/min",
    },
}
