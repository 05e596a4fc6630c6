"""Scopes enforced per operation. A view names what each action or method needs in
`required_scopes`; the same mapping is published per operation in the OpenAPI document."""

from rest_framework import exceptions
from rest_framework.permissions import BasePermission


class InsufficientScope(exceptions.PermissionDenied):
    default_code = "insufficient_scope"

    def __init__(self, missing):
        self.missing_scopes = sorted(missing)
        super().__init__(
            "This token lacks the scope this operation needs: " + " ".join(self.missing_scopes)
        )


def scopes_for(view, method: str) -> list[str] | None:
    """The scopes an operation needs; None when the view declares none for it."""
    required = getattr(view, "required_scopes", None)
    if required is None:
        return None
    if isinstance(required, (list, tuple)):
        return list(required)
    action = getattr(view, "action", None)
    if action and action in required:
        return list(required[action])
    method = method.upper()
    if method == "OPTIONS":
        # Answered 405 for every view (no metadata class): it reveals nothing.
        return []
    # Django answers HEAD with the GET handler, so HEAD needs what GET needs (else HEAD would
    # reveal, scope-free, whether an object exists).
    if method == "HEAD":
        method = "GET"
    scopes = required.get(method)
    return None if scopes is None else list(scopes)


class HasScopes(BasePermission):
    def has_permission(self, request, view):
        if request.user is None or request.auth is None:
            raise exceptions.NotAuthenticated("An OAuth 2.0 bearer token is required.")
        needed = scopes_for(view, request.method)
        if needed is None:
            # Fail closed: an operation someone forgot to declare is refused, not open.
            raise exceptions.PermissionDenied("This operation declares no scope; it is refused.")
        granted = set(request.auth.scope.split())
        missing = set(needed) - granted
        if missing:
            raise InsufficientScope(missing)
        return True
