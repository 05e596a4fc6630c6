"""`make cluster-test` (tests/cluster): several API nodes and Celery processes behind HAProxy and
PgBouncer on loopback. Production-like (DEBUG off) over plain HTTP, loopback webhooks allowed;
the application rate limit is out of the way of the load, the token endpoint's is not (the test
shows it is shared by the nodes)."""

import os

os.environ.setdefault("ALLOW_LOOPBACK_WEBHOOKS", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("RATE_LIMIT_APPLICATION", "10000000/min")

from api.settings.base import *  # noqa: F403

SECRET_KEY = os.environ.get("SECRET_KEY") or "cluster-test-only-key"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
