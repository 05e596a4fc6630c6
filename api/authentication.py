"""Bearer tokens from the Authorization header only (RFC 6750 §2.1; RFC 9700 forbids tokens in
query strings). Tokens are stored as SHA-256 checksums, so the look-up hashes what it is given."""

import functools
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.settings import api_settings

from api.joins import Joined, instances, select_list
from api.oauth import token_checksum
from api.throttling import APPLICATION_SCOPE, RateLimit, count_sql, parse_rate, window_start


@dataclass(frozen=True)
class Client:
    """The authenticated caller: an OAuth application of one organisation."""

    application: object
    organisation: object
    is_authenticated: bool = True
    is_staff: bool = False


class InvalidToken(exceptions.AuthenticationFailed):
    default_detail = "The access token is invalid, expired or revoked."
    default_code = "invalid_token"


class BearerTokenAuthentication(BaseAuthentication):
    www_authenticate_realm = "api"

    def authenticate(self, request):
        if "access_token" in request.query_params:
            request._request.bearer_error = "invalid_request"
            raise exceptions.AuthenticationFailed(
                "Access tokens are accepted only in the Authorization header, never in the URL.",
                code="invalid_request",
            )
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            request._request.bearer_error = "invalid_request"
            raise exceptions.AuthenticationFailed(
                "Use the Authorization header with the Bearer scheme.", code="invalid_request"
            )
        token = valid_token(token_checksum(raw.strip()), request._request)
        if token is None:
            request._request.bearer_error = "invalid_token"
            raise InvalidToken()
        organisation = token.application.organisation
        request._request.organisation = organisation
        request._request.application = token.application
        return Client(application=token.application, organisation=organisation), token

    def authenticate_header(self, request):
        error = getattr(request._request, "bearer_error", None)
        value = f'Bearer realm="{self.www_authenticate_realm}"'
        if error:
            value += f', error="{error}"'
        return value


_COUNTED = """SELECT 'app:' || (SELECT application_id FROM found), %(window_start)s, 1
    WHERE EXISTS (SELECT 1 FROM found)"""


@functools.cache
def _token_query() -> tuple[str, tuple[Joined, ...]]:
    """One statement that finds a live token with its application and organisation and counts
    the request against the application's rate-limit window: authentication is on every
    request, so it costs one round trip, not three. Built from the models' fields once."""
    token_model = get_access_token_model()
    application_model = get_application_model()
    organisation_model = application_model._meta.get_field("organisation").related_model
    parts = (
        Joined.of(token_model, "t", only={"id", "scope", "expires", "application_id"}),
        # What requests read of their application; any other field loads on first access.
        Joined.of(application_model, "a", only={"id", "client_id", "name", "organisation_id"}),
        Joined.of(organisation_model, "o"),
    )
    # Only model metadata is interpolated; the checksum and window are bound parameters.
    sql = f"""
WITH found AS (
    SELECT {select_list(parts)}
    FROM "{token_model._meta.db_table}" t
    JOIN "{application_model._meta.db_table}" a ON a.id = t.application_id
    JOIN "{organisation_model._meta.db_table}" o ON o.id = a.organisation_id
    WHERE t.token_checksum = %(checksum)s AND t.expires > %(now)s AND NOT o.suspended
), counted AS (
    {count_sql(_COUNTED)}
)
SELECT found.*, (SELECT count FROM counted) FROM found"""  # noqa: S608
    return sql, parts


def valid_token(checksum: str, request):
    """The live access token with this checksum, its application and organisation attached,
    or None. Records the rate-limit count on `request` (`ratelimit`) for ApplicationRateThrottle."""
    sql, parts = _token_query()
    limit, window = parse_rate(api_settings.DEFAULT_THROTTLE_RATES[APPLICATION_SCOPE])
    start, reset = window_start(window)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"checksum": checksum, "now": timezone.now(), "window_start": start})
        row = cursor.fetchone()
    if row is None:
        return None
    token, application, organisation = instances(row, parts)
    application.organisation = organisation
    token.application = application
    request.ratelimit = RateLimit(APPLICATION_SCOPE, limit, row[-1], reset, window)
    return token
