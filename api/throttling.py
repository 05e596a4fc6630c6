"""Rate limits keyed on the OAuth application (a new token does not reset them), counted in
PostgreSQL so all workers share one window. Answers carry the IETF RateLimit headers."""

import base64
import hashlib
import time
from dataclasses import dataclass
from urllib.parse import unquote_plus

from django.conf import settings
from django.db import connection
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from api.models import RateLimitWindow

APPLICATION_SCOPE = "application"
CLAIM_SCOPE = "claim"


def parse_rate(rate: str) -> tuple[int, int]:
    count, period = rate.split("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]
    return int(count), seconds


def window_start(window: int) -> tuple[int, int]:
    """The start of the current window (epoch seconds) and the seconds until it resets."""
    now = int(time.time())
    start = now - now % window
    return start, start + window - now


@dataclass(frozen=True)
class RateLimit:
    """One budget as this request left it: what the 429 and the RateLimit headers say."""

    policy: str
    limit: int
    used: int
    reset: int
    window: int

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def exceeded(self) -> bool:
        return self.used > self.limit


def count_sql(source: str) -> str:
    """The statement that counts one request in its window, for every budget. `source` gives
    the (key, window_start) pair: a VALUES list, or a SELECT inside a larger statement."""
    meta = RateLimitWindow._meta
    table = meta.db_table
    key, start, count = (meta.get_field(name).column for name in ("key", "window_start", "count"))
    return (
        f'INSERT INTO "{table}" ("{key}", "{start}", "{count}") {source} '
        f'ON CONFLICT ("{key}", "{start}") DO UPDATE SET "{count}" = "{table}"."{count}" + 1 '
        f'RETURNING "{count}"'
    )


_HIT = count_sql("VALUES (%s, %s, 1)")


def hit(key: str, limit: int, window: int) -> tuple[int, int, int]:
    """Count one request; return (limit, remaining, seconds until the window resets)."""
    start, reset = window_start(window)
    with connection.cursor() as cursor:
        cursor.execute(_HIT, [key, start])
        count = cursor.fetchone()[0]
    return limit, limit - count, reset


class ApplicationRateThrottle(BaseThrottle):
    """The count itself is taken by BearerTokenAuthentication in its token look-up (one round
    trip, leaving `request.ratelimit`); this turns it into a 429."""

    scope = APPLICATION_SCOPE

    def allow_request(self, request, view):
        state = getattr(request._request, "ratelimit", None)
        if state is None:
            return True
        self._wait = state.reset
        return not state.exceeded

    def wait(self):
        return self._wait


class ClaimCodeThrottle(BaseThrottle):
    """Claim-code look-ups per OAuth application, on top of its general budget. A code is all
    a person carries; a member may find only its own referrals by it, but each try elsewhere is
    a probe, and guessing must stay slow whatever the look-up reveals. The RateLimit headers
    then describe whichever of the two budgets runs out first."""

    scope = CLAIM_SCOPE

    def allow_request(self, request, view):
        application = getattr(request._request, "application", None)
        if application is None:
            return True
        limit, window = parse_rate(api_settings.DEFAULT_THROTTLE_RATES[self.scope])
        _, remaining, reset = hit(f"{self.scope}:{application.pk}", limit, window)
        state = RateLimit(self.scope, limit, limit - remaining, reset, window)
        current = getattr(request._request, "ratelimit", None)
        if current is None or state.remaining < current.remaining:
            request._request.ratelimit = state
        self._wait = reset
        return not state.exceeded

    def wait(self):
        return self._wait


class TokenEndpointThrottle:
    """Secret checks (token, revocation and introspection requests) per client id, so guessing
    one client's secret is slow. The client is the one the request names, unless the caller
    knows it otherwise (introspection with a token)."""

    def check(self, request, client_id: str | None = None) -> int | None:
        if client_id is None:
            client_id = claimed_client_id(request)
        key = "token:" + hashlib.sha256(client_id.encode()).hexdigest()[:32]
        rate = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["token"]
        limit, window = parse_rate(rate)
        _, remaining, reset = hit(key, limit, window)
        return reset if remaining < 0 else None


def claimed_client_id(request) -> str:
    """The client a token-endpoint request names, as the rate limit and the audit trail both
    see it: the id half of an HTTP Basic header (RFC 6749 §2.3.1: form-encoded, then base64;
    the secret is never looked at), else the form body's `client_id`. Undecodable Basic
    credentials are their own key: keying on the whole header would give every guessed secret
    a fresh budget."""
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return request.META["HTTP_AUTHORIZATION"]
        return unquote_plus(decoded.partition(":")[0])
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.POST.get("client_id", "")
    return ""


def ratelimit_headers(request, response):
    state = getattr(request, "ratelimit", None)
    if state is None:
        return
    response["RateLimit-Policy"] = f'"{state.policy}";q={state.limit};w={state.window}'
    response["RateLimit"] = f'"{state.policy}";r={state.remaining};t={state.reset}'


def client_address(request) -> str:
    """The caller's address as DRF's throttles see it: REMOTE_ADDR, or behind `NUM_PROXIES`
    trusted proxies (REST_FRAMEWORK setting) the matching X-Forwarded-For entry. Only ever
    used as a throttle key, and then only as a keyed hash."""
    return BaseThrottle().get_ident(getattr(request, "_request", request))
