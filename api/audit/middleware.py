"""Records API writes and refused requests in the audit trail, after the response is built so
the entry carries the real result. Only route names, ids from the URL and the status are
kept: never bodies, query strings, tokens or claim codes."""

import logging
import re

from django.db import DatabaseError
from oauth2_provider.models import get_application_model

from api.audit.denials import is_denial, route_object_type
from api.audit.services import audit_record, route_name
from api.throttling import claimed_client_id

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Refusals recorded whatever the method: no valid token, a missing scope, and a read a rule
# refuses (the wrong party, a suspended partnership, data not consented). 404s are denials.
REFUSALS = frozenset({401, 403, 409})
AUDITED_PREFIXES = ("/api/v1/", "/oauth/", "/fhir/")
# URL kwargs that are object ids. Anything else (a claim code, which a person carries) is left
# out on purpose.
ID_KWARGS = ("pk", "id")
CREATED_ID = re.compile(r"^[0-9a-fA-F-]{1,64}$")


def object_id_from(kwargs: dict) -> str:
    for name in ID_KWARGS:
        if name in kwargs:
            return str(kwargs[name])
    for name, value in kwargs.items():
        if name.endswith(("_id", "_pk")):
            return str(value)
    return ""


def view_class_of(match):
    return getattr(match.func, "cls", None) or getattr(match.func, "view_class", None)


def object_type_from(match) -> str:
    named = route_object_type(match.view_name)
    if named:
        return named
    queryset = getattr(view_class_of(match), "queryset", None)
    return queryset.model._meta.model_name if queryset is not None else ""


def oauth_client_id(request) -> str:
    """The client a token-endpoint request names, if it is a registered client."""
    client_id = claimed_client_id(request)
    # PostgreSQL text cannot hold NUL: such an id names no client (and must not fail the query).
    if (
        client_id
        and "\x00" not in client_id
        and get_application_model().objects.filter(client_id=client_id).exists()
    ):
        return client_id
    return ""


def created_id(response) -> str:
    """The new object's id, from the Location header of a 201."""
    last = response.get("Location", "").rstrip("/").rpartition("/")[2]
    return last if CREATED_ID.match(last) else ""


class AuditMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(AUDITED_PREFIXES):
            return self.get_response(request)
        response = self.get_response(request)
        try:
            self.record(request, response)
        except DatabaseError:
            # The change itself is committed (or the database is down and the caller gets its
            # 503); failing the response now would invite a retry that repeats the change. The
            # gap is visible: this error is logged and alerts.
            log.error("audit entry could not be written", exc_info=False)
        return response

    def record(self, request, response) -> None:
        status = response.status_code
        match = getattr(request, "resolver_match", None)
        denied = is_denial(request, status)
        # A POST that only reads (a search kept out of URLs) says so with `audit_as_read`.
        writes = request.method in WRITE_METHODS and not (
            match and getattr(view_class_of(match), "audit_as_read", False)
        )
        if not (denied or writes or status in REFUSALS):
            return
        application = getattr(request, "application", None)
        if application is None and request.path.startswith("/oauth/"):
            application = oauth_client_id(request)
        entry = {
            "action": route_name(request),
            "result": str(status),
            "organisation": getattr(request, "organisation", None),
            "application": application,
            "object_type": object_type_from(match) if match else "",
            "object_id": object_id_from(match.kwargs) if match else "",
            "request_id": getattr(request, "request_id", None),
        }
        if not entry["object_id"] and status == 201:
            entry["object_id"] = created_id(response)
        if denied:
            entry["action"] = "denied " + entry["action"]
        audit_record(**entry)
