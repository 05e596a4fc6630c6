"""Bearer tokens from the Authorization header only (RFC 6750 §2.1; RFC 9700 forbids tokens in
query strings). Tokens are stored as SHA-256 checksums, so the look-up hashes what it is given."""

from dataclasses import dataclass

from django.utils import timezone
from oauth2_provider.models import get_access_token_model
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from api.oauth import token_checksum


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
        token = (
            get_access_token_model()
            .objects.select_related("application__organisation")
            .filter(token_checksum=token_checksum(raw.strip()))
            .first()
        )
        if (
            token is None
            or token.application is None
            or token.expires <= timezone.now()
            or token.application.organisation.suspended
        ):
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
