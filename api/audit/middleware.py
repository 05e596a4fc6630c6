"""Records API writes and refused requests in the audit trail, after the response is built so
the entry carries the real result. Only route names, ids from the URL and the status are
kept: never bodies, query strings, tokens or claim codes."""

import base64
import binascii
import logging
import re

from django.db import DatabaseError

from api.audit.denials import denied_object, route_object_type
from api.audit.services import audit_record, route_name

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUDITED_PREFIXES = ("/api/v1/", "/oauth/")
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
    view_class = view_class_of(match)
    queryset = getattr(view_class, "queryset", None)
    if queryset is not None:
        return queryset.model._meta.model_name
    return route_object_type(match.view_name)


def oauth_client_id(request) -> str:
    """The client named in a token-endpoint request, if it is a registered client. Only the
    client id half of a Basic header is decoded; the secret is never looked at."""
    from partners.models import Application

    client_id = ""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.startswith("Basic "):
        try:
            client_id = base64.b64decode(header[6:], validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            client_id = ""
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        client_id = request.POST.get("client_id", "")
    if client_id and Application.objects.filter(client_id=client_id).exists():
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
        request.audit_collects = True
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
        denied = getattr(request, "audit_denied", None)
        match = getattr(request, "resolver_match", None)
        if denied is None and status == 404 and match and getattr(request, "organisation", None):
            found = denied_object(match)
            if found is not None:
                denied = {"object_type": found[0], "object_id": found[1]}
        # A POST that only reads (a search kept out of URLs) says so with `audit_as_read`.
        writes = request.method in WRITE_METHODS and not (
            match and getattr(view_class_of(match), "audit_as_read", False)
        )
        if denied is None and not (writes or status in (401, 403)):
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
        if denied is not None:
            entry.update(denied, action="denied " + entry["action"], result="404")
        audit_record(**entry)
