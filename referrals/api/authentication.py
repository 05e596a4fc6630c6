"""The person's self-service token: from the Authorization header, looked up by its SHA-256.
It opens one referral's self-service routes for ten minutes and nothing else: partner routes
look tokens up among OAuth tokens, where it is not, and these routes look only here, so an
OAuth client's token opens no self-service route either."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from referrals.selectors import self_grant

REALM = "self-service"


class Person:
    """request.user on self-service routes: no account, only the grant."""

    is_authenticated = True
    is_staff = False


class SelfTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise exceptions.AuthenticationFailed(
                "Use the Authorization header with the Bearer scheme.", code="invalid_request"
            )
        grant = self_grant(token=raw.strip())
        if grant is None:
            raise exceptions.AuthenticationFailed(
                "This self-service token is not valid: it expired (they last ten minutes) or "
                "was ended. Exchange the code and PIN again.",
                code="invalid_token",
            )
        return Person(), grant

    def authenticate_header(self, request):
        return f'Bearer realm="{REALM}"'


class HasSelfGrant(BasePermission):
    def has_permission(self, request, view):
        if request.auth is None:
            raise exceptions.NotAuthenticated("A self-service token is required.")
        return True


class SelfTokenScheme(OpenApiAuthenticationExtension):
    target_class = SelfTokenAuthentication
    name = "selfToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The person's self-service token from `POST /api/v1/self/token` "
            "(claim code and PIN). Lasts 10 minutes and opens only that one referral's "
            "self-service routes; it is not an OAuth token and no partner route accepts it.",
        }
