import json
import logging
import re
import time
import uuid
from urllib.parse import unquote_plus

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404

from api.audit.middleware import view_class_of
from api.errors import PROBLEM_CONTENT_TYPE, not_found, problem, shaped
from api.logging import request_id_var
from api.throttling import ratelimit_headers

access_log = logging.getLogger("api.access")
log = logging.getLogger("api.errors")

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")


class RequestIDMiddleware:
    """A request id on every response and log line, taken from the caller when well formed.

    The access log names the route pattern, not the path, so claim codes and ids in URLs and
    search terms in query strings never reach the logs.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            ratelimit_headers(request, response)
            match = getattr(request, "resolver_match", None)
            access_log.info(
                "request",
                extra={
                    "method": request.method,
                    "route": "/" + match.route if match and match.route else "-",
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "application": getattr(
                        getattr(request, "application", None), "client_id", None
                    ),
                },
            )
            return response
        finally:
            request_id_var.reset(token)


class CacheControlMiddleware:
    """`Cache-Control: no-store` on every answer, errors included: they carry personal data,
    claim codes, webhook secrets, notes echoed back, or input echoed in a problem. Only a
    success of a view that declares `directory_data = True` (the same public directory for
    every partner) may be kept, and only by the caller's own cache (`private`)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        directory = match is not None and getattr(view_class_of(match), "directory_data", False)
        response["Cache-Control"] = (
            "private" if directory and response.status_code < 400 else "no-store"
        )
        return response


class ProblemDetailsMiddleware:
    """Turn every error response that is not already a problem document into one, and every
    exception into a 500 (or 503 when the database is unreachable) without a stack trace. Routes
    that registered another error shape (api.errors.register_error_shape) get it instead."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return shaped(request, self.problem_of(request))

    def problem_of(self, request):
        if "\x00" in unquote_plus(request.META.get("QUERY_STRING", "")):
            # PostgreSQL text cannot hold NUL, so it would reach the database as a 500
            # (Schemathesis sent one in ?kind=); no parameter of this API can contain it.
            return problem(400, "The query string contains a NUL character.", instance=request.path)
        if "\x00" in request.path:
            # The same for a path segment (a claim code, which is looked up as text).
            return problem(400, "The path contains a NUL character.", instance=request.path)
        response = self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith(
            PROBLEM_CONTENT_TYPE
        ):
            return response
        extensions = {}
        detail = None
        if response.get("Content-Type", "").startswith("application/json"):
            try:
                body = json.loads(response.content)
            except ValueError:
                body = None
            if isinstance(body, dict) and "error" in body:
                # OAuth endpoints (RFC 6749 §5.2): keep `error` so OAuth clients still work.
                extensions = {k: body[k] for k in ("error", "error_description") if k in body}
                detail = body.get("error_description") or body["error"]
        if detail is None and response.status_code == 404 and request.resolver_match is None:
            # Django's own 404 for a URL no route matches (its debug page under DEBUG).
            return not_found(request)
        if detail is None:
            detail = {
                404: "No resource at this URL.",
                405: f"Method {request.method} is not allowed here.",
            }.get(response.status_code, "The request failed.")
        code = "oauth-error" if "error" in extensions else None
        out = problem(response.status_code, detail, code=code, instance=request.path, **extensions)
        for header in ("WWW-Authenticate", "Retry-After", "Allow", "Cache-Control", "Pragma"):
            if header in response:
                out[header] = response[header]
        return out

    def process_exception(self, request, exception):
        if isinstance(exception, RequestDataTooBig):
            return problem(413, "The request body is too large.", instance=request.path)
        if isinstance(exception, (Http404, PermissionDenied, SuspiciousOperation, BadRequest)):
            # Django answers these itself through the handler400/403/404 problem views.
            return None
        if isinstance(exception, (OperationalError, InterfaceError)):
            log.warning("database unavailable", exc_info=False)
            response = problem(
                503,
                "The database is unavailable. Retry shortly.",
                code="database-unavailable",
                instance=request.path,
            )
            response["Retry-After"] = "5"
            return response
        log.error("unhandled error", exc_info=not isinstance(exception, DatabaseError))
        return problem(
            500, "An unexpected error occurred; it has been logged.", instance=request.path
        )


ADMIN_PREFIX = "/admin/"
# The person's page (referrals.me): its own short session, for the CSRF secret and the
# self-service token. Matched as "/me" and below, never "/media".
PERSON_PREFIX = "/me/"


class AdminOnly:
    """Sessions, users and messages serve the Django admin only: the API authenticates every
    request with a bearer token and sets no cookies. Elsewhere these middlewares step aside,
    which was about a tenth of a directory search's time in Python. (Subclasses of Django's
    own, so the admin's system checks still find them.)"""

    prefixes: tuple[str, ...] = (ADMIN_PREFIX,)

    def applies(self, request) -> bool:
        return (request.path_info + "/").startswith(self.prefixes)

    def __call__(self, request):
        if self.applies(request):
            return super().__call__(request)
        return self.get_response(request)


class NoSession:
    """`request.session` where there are no sessions: holds nothing and keeps nothing. The CSRF
    middleware keeps its secret in the session (CSRF_USE_SESSIONS, so the person's page sets no
    cookie beyond its session) and reads it on every request; API requests have no session,
    and their views are all CSRF-exempt (bearer tokens are not sent by browsers on their own)."""

    def get(self, key, default=None):
        return default

    def __contains__(self, key) -> bool:
        return False

    def __getitem__(self, key):
        raise KeyError(key)

    def __setitem__(self, key, value) -> None:
        return None


NO_SESSION = NoSession()


class ScopedSessionMiddleware(AdminOnly, SessionMiddleware):
    """Sessions for the admin's sign-in and the person page's short session, nowhere else."""

    prefixes = (ADMIN_PREFIX, PERSON_PREFIX)

    def __call__(self, request):
        if not self.applies(request):
            request.session = NO_SESSION
        return super().__call__(request)


class AdminAuthenticationMiddleware(AdminOnly, AuthenticationMiddleware):
    pass


class AdminMessageMiddleware(AdminOnly, MessageMiddleware):
    pass
