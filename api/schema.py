"""OpenAPI plumbing: the OAuth2 security scheme with per-operation scopes, the shared problem
component, and the error responses every operation can give."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.views import SpectacularRedocView

from api.permissions import scopes_for

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "properties": {
        "type": {"type": "string", "description": "A URI reference naming the problem type."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Field errors, for validation problems.",
            "items": {
                "type": "object",
                "properties": {
                    "pointer": {"type": "string", "description": "JSON pointer to the field."},
                    "detail": {"type": "string"},
                },
                "required": ["pointer", "detail"],
            },
        },
        "missing_scopes": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["type", "title", "status", "detail"],
}

COMMON_ERRORS = {
    "400": "The request is malformed or has invalid fields.",
    "401": "No token, or an invalid, expired or revoked one.",
    "403": "The token lacks a scope this operation needs.",
    "429": "Rate limit exceeded; see Retry-After.",
    "500": "An unexpected error; the problem document never carries its details.",
}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "oauth2"

    def get_security_definition(self, auto_schema):
        return {
            "type": "oauth2",
            "description": "Client credentials grant. Access tokens last 15 minutes.",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/oauth/token/",
                    "scopes": dict(settings.SCOPES),
                }
            },
        }

    def get_security_requirement(self, auto_schema):
        return {self.name: scopes_for(auto_schema.view, auto_schema.method) or []}


def only_public_api(endpoints, **kwargs):
    return [e for e in endpoints if e[0].startswith("/api/v1/")]


def add_problem_responses(result, generator, request, public):
    """Every operation documents its error responses as problem documents."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    problem_content = {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    for path, path_item in result.get("paths", {}).items():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            needed = dict(COMMON_ERRORS)
            if "{" in path:
                needed["404"] = "No such object, or not one your organisation may see."
            for code, description in needed.items():
                responses.setdefault(code, {"description": description})
            for code, response in responses.items():
                if code[0] in "45":
                    response["content"] = dict(problem_content)
    return result


class RedocView(SpectacularRedocView):
    """Redoc from the sidecar assets, without the stock page's Google Fonts links."""

    template_name = "api/redoc.html"


# Opening hours are wall-clock times in the location's own time zone, so they carry no offset;
# JSON Schema's `format: time` (RFC 3339 full-time) requires one, and validators reject
# "09:00:00". Say what the API means instead.
LOCAL_TIME = {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?$"}


def local_times(result, generator, request, public):
    """Replace `format: time` with the local time pattern, everywhere in the document."""

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "string" and node.get("format") == "time":
                del node["format"]
                node.update(LOCAL_TIME)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result)
    return result


def _unwrapped(value):
    """drf-spectacular wraps a list operation's example in a list (and a page); examples written
    as the whole answer end up wrapped twice."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        return value[0]
    if isinstance(value, dict) and set(value) == {"next", "previous", "results"}:
        inner = value["results"]
        if len(inner) == 1 and isinstance(inner[0], dict) and "results" in inner[0]:
            return inner[0]
        if len(inner) == 1 and isinstance(inner[0], list):
            return {**value, "next": None, "results": inner[0]}
    return value


def whole_answer_examples(result, generator, request, public):
    """Let an operation's example be the whole answer (a page, a list), as its reader sees it."""
    for item in result.get("paths", {}).values():
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                for media in response.get("content", {}).values():
                    for example in media.get("examples", {}).values():
                        if "value" in example:
                            example["value"] = _unwrapped(example["value"])
    return result
