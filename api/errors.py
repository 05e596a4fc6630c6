"""One error shape for the whole API: RFC 9457 problem details (`application/problem+json`).
Services raise DomainError subclasses; DRF exceptions, Django's 404/500 and anything else that
escapes a view all end here, so a caller never sees HTML or a stack trace."""

import json
import logging
from collections.abc import Callable

from django.http import HttpResponse
from django.urls import Resolver404, resolve
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from api import problems
from api.permissions import InsufficientScope
from api.serializers import only_rules

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = problems.BASE


class DomainError(Exception):
    """A business rule said no. Subclasses set a stable problem code, sent with the status the
    catalogue gives it, and may set response `headers` (a Retry-After)."""

    status = 400
    code = "bad-request"
    title = None
    headers: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Every type a client can meet is in the catalogue, with the status it is sent with.
        entry = problems.CATALOGUE[cls.code]
        if "status" not in cls.__dict__:
            cls.status = entry.status
        elif entry.status != cls.status:
            raise TypeError(f"{cls.__name__}: {cls.code} is a {entry.status} in the catalogue")

    def __init__(self, detail: str, **extensions):
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class NotFound(DomainError):
    code = "not-found"


class Conflict(DomainError):
    code = "conflict"


class Gone(DomainError):
    code = "gone"


class PreconditionFailed(DomainError):
    code = "precondition-failed"


class PayloadTooLarge(DomainError):
    code = "payload-too-large"


class PreconditionRequired(DomainError):
    code = "precondition-required"


class Unprocessable(DomainError):
    code = "unprocessable"


class WrongParty(Conflict):
    """The action is the other organisation's: a 409, since the caller sees the object and its
    token may hold every scope; 403 is left to a missing scope and Django's own refusals."""

    code = "wrong-party"


class InvalidInput(DomainError):
    """Validation failed in a service: carries field errors like a serializer would."""

    code = "validation-error"

    def __init__(self, detail: str, errors: list[dict] | None = None, **extensions):
        super().__init__(detail, errors=errors or [], **extensions)


def problem(
    status_code: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    **extensions,
) -> HttpResponse:
    """A problem document whose `type` is the catalogue's entry for `code` (DRF's code or the
    status's when it has none of its own)."""
    entry = problems.lookup(code, status_code)
    body = {
        "type": entry.uri,
        "title": title or entry.title,
        "status": status_code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return HttpResponse(
        json.dumps(body, ensure_ascii=False), status=status_code, content_type=PROBLEM_CONTENT_TYPE
    )


# Routes whose standard prescribes another error document (the FHIR facade's OperationOutcome)
# register a converter for their path prefix. Every error is built as a problem first, in the
# one place that knows statuses, headers and details; only its shape changes at the door.
_error_shapes: list[tuple[str, Callable[[HttpResponse], HttpResponse]]] = []


def register_error_shape(prefix: str, convert: Callable[[HttpResponse], HttpResponse]) -> None:
    """`convert` turns a problem response into the document the routes under `prefix` answer
    with, keeping its status and headers."""
    if (prefix, convert) not in _error_shapes:
        _error_shapes.append((prefix, convert))


def shaped(request, response: HttpResponse) -> HttpResponse:
    """The error response as the route's standard wants it: problem+json unless a registered
    prefix says otherwise."""
    if response.status_code < 400 or not response.get("Content-Type", "").startswith(
        PROBLEM_CONTENT_TYPE
    ):
        return response
    for prefix, convert in _error_shapes:
        if request.path == prefix or request.path.startswith(prefix + "/"):
            return convert(response)
    return response


def field_errors(detail, pointer: str = "") -> list[dict]:
    """Flatten DRF's nested error structure into JSON-pointer field errors."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            if key == "non_field_errors":
                out.extend(field_errors(value, pointer))
            else:
                out.extend(field_errors(value, f"{pointer}/{escape_pointer(str(key))}"))
        return out
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [{"pointer": pointer or "/", "detail": str(item)} for item in detail]
        out = []
        for index, item in enumerate(detail):
            if item:
                out.extend(field_errors(item, f"{pointer}/{index}"))
        return out
    return [{"pointer": pointer or "/", "detail": str(detail)}]


def escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def exception_handler(exc, context):
    request = context.get("request")
    instance = request.path if request is not None else None
    if isinstance(exc, DomainError):
        out = problem(
            exc.status,
            exc.detail,
            code=exc.code,
            title=exc.title,
            instance=instance,
            **exc.extensions,
        )
        for header, value in exc.headers.items():
            out[header] = value
        return out
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    extensions = {}
    status = response.status_code
    if isinstance(exc, exceptions.ValidationError):
        extensions["errors"] = field_errors(exc.detail)
        if only_rules(exc.get_codes()):
            # The input matches the schema; business rules refuse it.
            detail = "The request matches the schema, but a rule refuses it; see errors."
            status, code = 422, "unprocessable"
        else:
            detail = "The request has invalid fields; see errors."
            code = "validation-error"
    else:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        code = getattr(exc.detail, "code", None)
        code = code.replace("_", "-") if isinstance(code, str) else None
        if isinstance(exc, InsufficientScope):
            extensions["missing_scopes"] = exc.missing_scopes
        if isinstance(exc, exceptions.ParseError):
            detail = "The request body is not valid JSON."
            code = "malformed-json"
    out = problem(status, str(detail), code=code, instance=instance, **extensions)
    for header in ("WWW-Authenticate", "Retry-After", "Allow"):
        if header in response:
            out[header] = response[header]
    if isinstance(exc, exceptions.Throttled) and "Retry-After" not in out:
        out["Retry-After"] = str(int(exc.wait or 1))
    if isinstance(exc, InsufficientScope):
        out["WWW-Authenticate"] = (
            f'Bearer realm="api", error="insufficient_scope", scope="{" ".join(exc.missing_scopes)}"'
        )
    return out


def other_slash(request) -> str | None:
    """The route this path misses only by its trailing slash, if there is one. No route ends in
    a slash (but the admin's, which are Django's), so `/api/v1/referrals/` names
    `/api/v1/referrals` rather than answering "nothing here"."""
    path = request.path_info
    if path == "/":
        return None
    other = path[:-1] if path.endswith("/") else path + "/"
    urlconf = getattr(request, "urlconf", None)
    try:
        resolve(path, urlconf)
    except Resolver404:
        try:
            resolve(other, urlconf)
        except Resolver404:
            return None
        return request.path[: len(request.path) - len(path)] + other
    return None


def not_found(request) -> HttpResponse:
    """Django's 404 for a URL no route matches, naming the route that differs only by a slash."""
    route = other_slash(request)
    if route is None:
        return problem(404, "No resource at this URL.", instance=request.path)
    return problem(
        404,
        f"No resource at this URL; the route is {route} (no route ends in a slash).",
        instance=request.path,
        route=route,
    )


def handler404(request, exception=None):
    return not_found(request)


def handler500(request):
    return problem(500, "An unexpected error occurred; it has been logged.", instance=request.path)


def handler400(request, exception=None):
    return problem(400, "The request could not be understood.", instance=request.path)


def handler403(request, exception=None):
    return problem(403, "This request is not allowed.", instance=request.path)


def csrf_failure(request, reason=""):
    return problem(403, "CSRF verification failed.", instance=request.path)
