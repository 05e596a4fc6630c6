"""Benchmarks (`make bench`): production-like (DEBUG off, quiet logs) but over plain HTTP on
loopback, with rate limits out of the way and the bench-only comparison views mounted."""

import os

os.environ.setdefault("ALLOW_LOOPBACK_WEBHOOKS", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from api.settings.base import *  # noqa: F403

SECRET_KEY = "bench-only-key"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.bench.urls"
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {
        **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],  # noqa: F405
        "application": "10000000/min",
        "token": "100000/min",
        "claim": "10000000/min",
    },
}
