"""OAuth 2.0 for partner systems: client credentials only, per-application scopes, hashed
tokens and secrets (RFC 9700). django-oauth-toolkit does the protocol; this module decides
who may have what."""

import hashlib

from django.conf import settings
from django.http import JsonResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views as oauth_views
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import BaseScopes

from api.throttling import TokenEndpointThrottle


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
        return super().validate_scopes(client_id, request.scopes, client, request, *args, **kwargs)

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


def throttled(request):
    """A 429 once a client id has spent its budget of secret checks, else None."""
    retry_after = TokenEndpointThrottle().check(request)
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


class IntrospectTokenView(oauth_views.IntrospectTokenView):
    """RFC 7662 introspection, POST only so tokens never travel in URLs."""

    http_method_names = ["post", "options"]

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
            "introspection_endpoint_auth_methods_supported": ["bearer"],
            "scopes_supported": sorted(settings.SCOPES),
            "service_documentation": base + "/api/docs/",
        }
    )


@method_decorator(csrf_exempt, name="dispatch")
class RevokeTokenView(oauth_views.RevokeTokenView):
    """RFC 7009 revocation. The toolkit looks tokens up by checksum *and* the calling client,
    so a client can revoke only its own tokens. It checks the client secret too, so it shares
    the token endpoint's budget: otherwise it would be an unthrottled secret-guessing oracle."""

    def post(self, request, *args, **kwargs):
        return throttled(request) or super().post(request, *args, **kwargs)
