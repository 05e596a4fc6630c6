"""`make verify`: the real stack (gunicorn, PostgreSQL, Celery, Redis) tested from the outside by
third-party tools. Production-like (DEBUG off) over plain HTTP on loopback, with rate limits out
of the way so fuzzing and load measure the API, not the throttle."""

import os

os.environ.setdefault("ALLOW_LOOPBACK_WEBHOOKS", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from api.settings.base import *  # noqa: F403

SECRET_KEY = "verify-only-key"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {
        **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],  # noqa: F405
        "application": "10000000/min",
        "token": "100000/min",
        "claim": "10000000/min",
    },
}
