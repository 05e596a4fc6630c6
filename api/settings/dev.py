"""What `make run` serves: a local demo network. Plain-HTTP loopback webhooks are allowed so a
local receiver can be used."""

import os

os.environ.setdefault("ALLOW_LOOPBACK_WEBHOOKS", "1")

from api.settings.base import *  # noqa: F403
from api.settings.base import env_bool

SECRET_KEY = SECRET_KEY or "dev-only-insecure-key-never-use-in-production"  # noqa: F405
DEBUG = env_bool("DEBUG", False)
