"""One error shape for the whole API: RFC 9457 problem details (`application/problem+json`).
Services raise DomainError subclasses; DRF exceptions, Django's 404/500 and anything else that
escapes a view all end here, so a caller never sees HTML or a stack trace."""

import json
import logging

from django.http import HttpResponse
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from api.permissions import InsufficientScope

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    410: "Gone",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class DomainError(Exception):
    """A business rule said no. Subclasses set the status and a stable problem code."""

    status = 400
    code = "bad-request"
    title = None

    def __init__(self, detail: str, **extensions):
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class NotFound(DomainError):
    status = 404
    code = "not-found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Gone(DomainError):
    status = 410
    code = "gone"


class PreconditionFailed(DomainError):
    status = 412
    code = "precondition-failed"


class PreconditionRequired(DomainError):
    status = 428
    code = "precondition-required"


class Unprocessable(DomainError):
    status = 422
    code = "unprocessable"


class ForbiddenAction(DomainError):
    status = 403
    code = "forbidden"


class InvalidInput(DomainError):
    """Validation failed in a service: carries field errors like a serializer would."""

    status = 400
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
    body = {
        "type": PROBLEM_BASE + (code or slug(status_code)),
        "title": title or TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return HttpResponse(
        json.dumps(body, ensure_ascii=False), status=status_code, content_type=PROBLEM_CONTENT_TYPE
    )


def slug(status_code: int) -> str:
    return TITLES.get(status_code, "error").lower().replace(" ", "-")


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
        return problem(
            exc.status,
            exc.detail,
            code=exc.code,
            title=exc.title,
            instance=instance,
            **exc.extensions,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    extensions = {}
    if isinstance(exc, exceptions.ValidationError):
        detail = "The request has invalid fields; see errors."
        extensions["errors"] = field_errors(exc.detail)
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
    out = problem(response.status_code, str(detail), code=code, instance=instance, **extensions)
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


def handler404(request, exception=None):
    return problem(404, "No resource at this URL.", instance=request.path)


def handler500(request):
    return problem(500, "An unexpected error occurred; it has been logged.", instance=request.path)


def handler400(request, exception=None):
    return problem(400, "The request could not be understood.", instance=request.path)


def handler403(request, exception=None):
    return problem(403, "This request is not allowed.", instance=request.path)


def csrf_failure(request, reason=""):
    return problem(403, "CSRF verification failed.", instance=request.path)
