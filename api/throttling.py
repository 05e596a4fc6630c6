"""Rate limits keyed on the OAuth application (a new token does not reset them), counted in
PostgreSQL so all workers share one window. Answers carry the IETF RateLimit headers."""

import base64
import hashlib
import time
from urllib.parse import unquote_plus

from django.conf import settings
from django.db import connection
from rest_framework.throttling import BaseThrottle

_UPSERT = """
INSERT INTO api_ratelimitwindow (key, window_start, count) VALUES (%s, %s, 1)
ON CONFLICT (key, window_start) DO UPDATE SET count = api_ratelimitwindow.count + 1
RETURNING count
"""


APPLICATION_SCOPE = "application"


def parse_rate(rate: str) -> tuple[int, int]:
    count, period = rate.split("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]
    return int(count), seconds


def window_start(window: int) -> tuple[int, int]:
    """The start of the current window (epoch seconds) and the seconds until it resets."""
    now = int(time.time())
    start = now - now % window
    return start, start + window - now


def hit(key: str, limit: int, window: int) -> tuple[int, int, int]:
    """Count one request; return (limit, remaining, seconds until the window resets)."""
    start, reset = window_start(window)
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, [key, start])
        count = cursor.fetchone()[0]
    return limit, limit - count, reset


class ApplicationRateThrottle(BaseThrottle):
    """The count itself is taken by BearerTokenAuthentication in its token look-up (one round
    trip); this turns it into a 429 and the RateLimit headers."""

    scope = APPLICATION_SCOPE

    def allow_request(self, request, view):
        counted = getattr(request._request, "ratelimit_count", None)
        if counted is None:
            return True
        limit, window, count, reset = counted
        remaining = limit - count
        request._request.ratelimit = (self.scope, limit, max(remaining, 0), reset, window)
        self._wait = reset
        return remaining >= 0

    def wait(self):
        return self._wait


class TokenEndpointThrottle:
    """Secret checks (token and revocation requests) per client id, so guessing one client's
    secret is slow."""

    def check(self, request) -> int | None:
        client_id = basic_client_id(request.META.get("HTTP_AUTHORIZATION", ""))
        if client_id is None:
            client_id = request.POST.get("client_id", "")
        key = "token:" + hashlib.sha256(client_id.encode()).hexdigest()[:32]
        rate = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["token"]
        limit, window = parse_rate(rate)
        _, remaining, reset = hit(key, limit, window)
        return reset if remaining < 0 else None


def basic_client_id(header: str) -> str | None:
    """The client id of an HTTP Basic header (RFC 6749 §2.3.1: form-encoded, then base64).
    Keying on the whole header would give every guessed secret a fresh budget."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return header
    return unquote_plus(decoded.partition(":")[0])


def ratelimit_headers(request, response):
    state = getattr(request, "ratelimit", None)
    if state is None:
        return
    policy, limit, remaining, reset, window = state
    response["RateLimit-Policy"] = f'"{policy}";q={limit};w={window}'
    response["RateLimit"] = f'"{policy}";r={remaining};t={reset}'
