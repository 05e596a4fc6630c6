"""OAuth 2.0 for partner systems: client credentials only, per-application scopes, hashed
tokens and secrets (RFC 9700). django-oauth-toolkit does the protocol; this module decides
who may have what."""

import hashlib

from django.conf import settings
from django.http import JsonResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views as oauth_views
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import BaseScopes
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.common import Request as OauthlibRequest
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors

from api.throttling import TokenEndpointThrottle

FORM = "application/x-www-form-urlencoded"


class ApplicationScopes(BaseScopes):
    """An application gets the scopes it was granted, never more: a token request with no scope
    gets exactly those, and asking for any other is `invalid_scope`."""

    def get_all_scopes(self):
        return settings.OAUTH2_PROVIDER["SCOPES"]

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        if application is None:
            return []
        granted = [s for s in application.scopes if s in settings.SCOPES]
        if application.resource_server:
            granted.append(settings.INTROSPECTION_SCOPE)
        return granted

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return [s for s in self.get_available_scopes(application) if s in settings.SCOPES]


class Validator(OAuth2Validator):
    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        # oauthlib splits `scope=` (or stray spaces) into empty names, which would make an
        # empty request invalid_scope; an empty request means the application's own scopes.
        # Repeated names are kept once, so the token's scope string stays canonical.
        asked = list(dict.fromkeys(s for s in scopes if s))
        request.scopes = asked or self.get_default_scopes(client_id, request)
        if super().validate_scopes(client_id, request.scopes, client, request, *args, **kwargs):
            return True
        # invalid_scope, naming the scopes refused: oauthlib's own words name none.
        available = set(ApplicationScopes().get_available_scopes(client))
        refused = [scope for scope in request.scopes if scope not in available]
        unknown = [scope for scope in refused if scope not in settings.OAUTH2_PROVIDER["SCOPES"]]
        raise oauth2_errors.InvalidScopeError(
            description=(
                f"Scope{'s' if len(refused) != 1 else ''} not granted to this client: "
                f"{' '.join(refused)}"
                + (f" ({' '.join(unknown)} no scope of this API)" if unknown else "")
                + f". It may ask for: {' '.join(sorted(available)) or 'nothing'}."
            ),
            request=request,
        )

    def _load_application(self, client_id, request):
        # PostgreSQL text cannot hold NUL: such a client id (Basic header or form body) is
        # unknown, not a 500.
        if client_id and "\x00" in client_id:
            return None
        return super()._load_application(client_id, request)

    def authenticate_client(self, request, *args, **kwargs):
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        # A suspended organisation gets no new tokens (and its old ones fail in authentication).
        return not request.client.organisation.suspended


def token_checksum(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


@method_decorator(csrf_exempt, name="dispatch")
class TokenView(oauth_views.TokenView):
    """The token endpoint, throttled per client id against secret guessing."""

    def post(self, request, *args, **kwargs):
        media_type = request.content_type.split(";")[0].strip().lower()
        if media_type not in (FORM, "multipart/form-data"):
            # RFC 6749 §4.4.2: the token request is a form. JSON (the usual mistake) would read
            # as no grant at all, and "only client_credentials" would mislead.
            return JsonResponse(
                {
                    "error": "invalid_request",
                    "error_description": f"Send the token request as {FORM} (a form, not "
                    f"{media_type or 'an empty body'}): grant_type=client_credentials, with the "
                    "client id and secret in a Basic Authorization header or in the form.",
                },
                status=400,
            )
        if request.POST.get("grant_type") != "client_credentials":
            # Only machine clients exist here; the password and implicit grants are refused
            # outright (RFC 9700 §2.4), as is every grant that would need a user.
            return JsonResponse(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "Only the client_credentials grant is supported.",
                },
                status=400,
            )
        return throttled(request) or super().post(request, *args, **kwargs)


def throttled(request, client_id: str | None = None):
    """A 429 once a client id has spent its budget of secret checks, else None."""
    retry_after = TokenEndpointThrottle().check(request, client_id=client_id)
    if retry_after is None:
        return None
    response = JsonResponse(
        {
            "error": "slow_down",
            "error_description": "Too many requests for this client. Retry later.",
        },
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


def may_introspect(application) -> bool:
    """Only the network's resource servers hold the introspection scope (ApplicationScopes);
    a partner's client never does, so it can never read another partner's tokens."""
    return (
        settings.INTROSPECTION_SCOPE in ApplicationScopes().get_available_scopes(application)
        and not application.organisation.suspended
    )


UNKNOWN_TOKEN = "(unknown token)"
INTROSPECTION_REFUSED = {
    "error": "invalid_client",
    "error_description": "Only the network's resource servers may introspect tokens.",
}


@method_decorator(csrf_exempt, name="dispatch")
class IntrospectTokenView(OAuthLibMixin, View):
    """RFC 7662 introspection, POST only so tokens never travel in URLs.

    The caller is a resource server: its client id and secret (Basic header or form body), or
    its token with the `introspection` scope. The toolkit's view admits any client with a
    valid secret, so any partner could read any token's scopes and owner. Every attempt,
    refused or not, counts against the token endpoint's budget for the client it names, so
    this is no oracle for guessing secrets either. A refusal looks the same whether the secret
    was wrong or the client is a partner's."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        bearer = bearer_token(request)
        if bearer is None:
            refused = throttled(request)
            allowed = refused is None and self.client_may_introspect(request)
        else:
            token = (
                get_access_token_model()
                .objects.filter(token_checksum=token_checksum(bearer))
                .select_related("application__organisation")
                .first()
            )
            # Unknown tokens have no client to charge, so they share one budget: they all fail.
            client_id = token.application.client_id if token else UNKNOWN_TOKEN
            refused = throttled(request, client_id=client_id)
            allowed = (
                refused is None
                and token is not None
                and token.is_valid([settings.INTROSPECTION_SCOPE])
                and may_introspect(token.application)
            )
        if refused is not None:
            return refused
        if not allowed:
            response = JsonResponse(INTROSPECTION_REFUSED, status=401)
            response["WWW-Authenticate"] = 'Basic realm="oauth", Bearer realm="oauth"'
            return response
        return self.get_token_response(request.POST.get("token"))

    def client_may_introspect(self, request) -> bool:
        uri, http_method, body, headers = self.get_oauthlib_core()._extract_params(request)
        oauth_request = OauthlibRequest(uri, http_method, body, headers)
        validator = self.get_server().request_validator
        return validator.authenticate_client(oauth_request) and may_introspect(oauth_request.client)

    @staticmethod
    def get_token_response(token_value=None):
        # A suspended organisation's tokens fail in our own authentication; resource servers
        # must hear the same, so they are reported inactive rather than merely unexpired.
        if token_value is not None:
            token = (
                get_access_token_model()
                .objects.filter(token_checksum=token_checksum(token_value))
                .select_related("application__organisation")
                .first()
            )
            if token is not None and token.application and token.application.organisation.suspended:
                return JsonResponse({"active": False})
        return oauth_views.IntrospectTokenView.get_token_response(token_value)


def bearer_token(request) -> str | None:
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def authorization_server_metadata(request):
    """RFC 8414 metadata, so clients can discover the endpoints and scopes."""
    base = request.build_absolute_uri("/").rstrip("/")
    return JsonResponse(
        {
            "issuer": base,
            "token_endpoint": base + reverse("oauth:token"),
            "revocation_endpoint": base + reverse("oauth:revoke-token"),
            "introspection_endpoint": base + reverse("oauth:introspect"),
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "introspection_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "bearer",
            ],
            "scopes_supported": sorted(settings.SCOPES),
            "service_documentation": base + "/api/docs",
        }
    )


@method_decorator(csrf_exempt, name="dispatch")
class RevokeTokenView(oauth_views.RevokeTokenView):
    """RFC 7009 revocation. The toolkit looks tokens up by checksum *and* the calling client,
    so a client can revoke only its own tokens. It checks the client secret too, so it shares
    the token endpoint's budget: otherwise it would be an unthrottled secret-guessing oracle."""

    def post(self, request, *args, **kwargs):
        return throttled(request) or super().post(request, *args, **kwargs)
