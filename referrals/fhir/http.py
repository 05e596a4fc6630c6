"""HTTP for FHIR: JSON only (`application/fhir+json`), FHIR's `_format` and Accept rules, JSON
Patch bodies, weak version ETags, and OperationOutcome for every error.

Errors are built as problem documents by the project's one error path (api.errors and
ProblemDetailsMiddleware: 401, 403, 404, 405, 406, 413, 415, 429, 500 and 503 included), and
reshaped here at the door (registered in apps.py for the facade's prefix), so statuses and
headers are decided in one place."""

import json

from django.http import HttpResponse
from django.urls import reverse
from rest_framework import exceptions, renderers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.views import APIView

from api.parsers import JSONParser
from referrals.fhir import codes

ACCEPTED_MEDIA = ("application/fhir+json", "application/json", "application/json+fhir")
FORMATS = ("json", *ACCEPTED_MEDIA)

# OperationOutcome.issue.code for a problem: by its type where that says more, else by status.
ISSUE_BY_TYPE = {
    "validation-error": "invalid",
    "fhir-invalid": "invalid",
    "malformed-json": "structure",
    "fhir-refused": "business-rule",
    "partnership-required": "business-rule",
    "category-not-allowed": "business-rule",
    "wrong-party": "business-rule",
    "partnership-suspended": "business-rule",
    "not-consented": "business-rule",
    "idempotency-key-reused": "duplicate",
    "insufficient-scope": "forbidden",
    "database-unavailable": "transient",
}
ISSUE_BY_STATUS = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    428: "required",
    429: "throttled",
    500: "exception",
    503: "transient",
}
KEPT_OUT = frozenset({"content-type", "content-length"})


def operation_outcome(response: HttpResponse) -> HttpResponse:
    """A problem response as an OperationOutcome with the same status and headers: the first
    issue is the problem itself (its type as a code of urn:srn:fhir:problem), then one issue
    per element named (FHIRPath expressions)."""
    problem = json.loads(response.content)
    status = response.status_code
    kind = problem.get("type", "").rpartition("/")[2]
    code = ISSUE_BY_TYPE.get(kind) or ISSUE_BY_STATUS.get(status, "processing")
    issues = [
        {
            "severity": "error",
            "code": code,
            "details": {
                "coding": [{"system": codes.PROBLEM, "code": kind or str(status)}],
                "text": problem.get("title") or "Error",
            },
            "diagnostics": problem.get("detail") or problem.get("title") or "Error",
        }
    ]
    for error in problem.get("errors") or []:
        issue = {"severity": "error", "code": code, "diagnostics": error.get("detail", "")}
        if error.get("expression"):
            issue["expression"] = [error["expression"]]
        issues.append(issue)
    out = HttpResponse(
        json.dumps({"resourceType": "OperationOutcome", "issue": issues}, ensure_ascii=False),
        status=status,
        content_type=codes.JSON,
    )
    for name, value in response.items():
        if name.lower() not in KEPT_OUT:
            out[name] = value
    return out


class FhirJSONRenderer(renderers.BaseRenderer):
    media_type = codes.JSON
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


class FhirJSONParser(JSONParser):
    media_type = "application/fhir+json"


class JSONPatchParser(JSONParser):
    media_type = "application/json-patch+json"
    top_level = list
    top_level_name = "an array of operations"


class FhirNegotiation(DefaultContentNegotiation):
    """FHIR's rules instead of DRF's: `_format` (json or a JSON media type) wins over Accept;
    anything that cannot be JSON is a 406."""

    def select_renderer(self, request, renderers, format_suffix=None):
        wanted = request.query_params.get("_format")
        if wanted is not None:
            if wanted.split(";")[0].strip() not in FORMATS:
                raise exceptions.NotAcceptable(
                    "This server answers in JSON only: _format=json (application/fhir+json)."
                )
            return renderers[0], renderers[0].media_type
        accept = request.META.get("HTTP_ACCEPT", "").strip()
        if accept:
            ranges = []
            for item in accept.split(","):
                media, *params = [part.strip() for part in item.split(";")]
                quality = next((p[2:] for p in params if p.startswith("q=")), "1")
                try:
                    if float(quality) > 0:
                        ranges.append(media.lower())
                except ValueError:
                    continue
            if not any(media in (*ACCEPTED_MEDIA, "*/*", "application/*") for media in ranges):
                raise exceptions.NotAcceptable(
                    "This server answers in JSON only: accept application/fhir+json."
                )
        return renderers[0], renderers[0].media_type


def weak_etag(version: int) -> str:
    return f'W/"{version}"'


def strong_if_match(value: str | None) -> str | None:
    """FHIR's `If-Match: W/"3"` as the referral's own ETag `"3"` (the version either way)."""
    if value is None:
        return None
    return ", ".join(tag.strip().removeprefix("W/") for tag in value.split(","))


class FhirView(APIView):
    """Every FHIR route: the project's bearer tokens, per-method scopes and rate limit; FHIR's
    media types. Left out of the OpenAPI document: the CapabilityStatement documents these."""

    schema = None
    renderer_classes = [FhirJSONRenderer]
    parser_classes = [FhirJSONParser, JSONParser]
    content_negotiation_class = FhirNegotiation

    def initial(self, request, *args, **kwargs):
        """A method the route does not serve is 405 (FHIR's answer), before authentication and
        scopes, which would otherwise refuse it as undeclared."""
        if not hasattr(self, request.method.lower()):
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    def base(self) -> str:
        """This server's FHIR base URL, as the client reached it (Host is checked against
        ALLOWED_HOSTS)."""
        return self.request.build_absolute_uri(reverse("fhir:transaction"))
