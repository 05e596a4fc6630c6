"""OpenAPI plumbing: the OAuth2 security scheme with per-operation scopes, the shared problem
component, the error responses every operation can give, and the helpers views use to be
documented (schema generation without a request, one documented view per action)."""

import functools

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.views import SpectacularRedocView

from api import problems
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

# A string without NUL, which PostgreSQL text cannot hold (see NoNulText, no_nul_in_parameters).
NO_NUL = r"^[^\u0000]*$"


def _white_space() -> str:
    """What str.strip() removes (DRF trims text with it), as a character class's contents:
    `\\s` means less in other regex engines (not U+001C-U+001F) and more (U+FEFF)."""
    codes = [code for code in range(0x110000) if chr(code).isspace()]
    ranges, start = [], codes[0]
    for previous, code in zip(codes, [*codes[1:], None], strict=True):
        if code != previous + 1:
            ranges.append(f"\\u{start:04x}" + (f"-\\u{previous:04x}" if previous > start else ""))
            start = code
    return "".join(ranges)


# The same with a character that is not white space: DRF trims a text field, and a value of
# white space only is then blank, refused unless the field allows blanks (minLength counts it).
NO_NUL_NOT_BLANK = rf"^[^\u0000]*[^\u0000{_white_space()}][^\u0000]*$"

COMMON_ERRORS = {
    "400": "The request is malformed or has invalid fields.",
    "401": "No token, or an invalid, expired or revoked one.",
    "403": "The token lacks a scope this operation needs.",
    "414": "The request line is too long: fewer or shorter query parameters.",
    "429": "Rate limit exceeded; see Retry-After.",
    "500": "An unexpected error; the problem document never carries its details.",
}


def queryset_outside_requests(get_queryset):
    """Wrap a view's get_queryset: while drf-spectacular inspects the view there is no token,
    so no organisation to scope by, and the schema needs only the model, from `queryset`."""

    @functools.wraps(get_queryset)
    def wrapper(view):
        if getattr(view, "swagger_fake_view", False):
            return view.queryset.none()
        return get_queryset(view)

    return wrapper


def action_view(base, name: str, schema, doc: str, **attrs) -> type:
    """A subclass of `base` for one action, its `post` documented by `schema` and by `doc` (its
    summary and description, see api.schema_operations): extend_schema annotates the function
    it decorates, so each action needs a `post` of its own."""

    def post(self, request, pk):
        return base.post(self, request, pk)

    post.__doc__ = doc
    return type(name, (base,), {"__module__": base.__module__, "post": schema(post), **attrs})


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "oauth2"

    def get_security_definition(self, auto_schema):
        return {
            "type": "oauth2",
            "description": "Client credentials grant. Access tokens last 15 minutes.",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/oauth/token",
                    "scopes": dict(settings.SCOPES),
                }
            },
        }

    def get_security_requirement(self, auto_schema):
        return {self.name: scopes_for(auto_schema.view, auto_schema.method) or []}


class BoundedNestedList(OpenApiSerializerFieldExtension):
    """A nested `many=True` serializer checks its `max_length` and `min_length` itself, not
    through validators, so drf-spectacular leaves them out: state them as maxItems and
    minItems, or clients learn the bound only from a 400."""

    target_class = "rest_framework.serializers.ListSerializer"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if self.target.max_length is not None:
            schema["maxItems"] = self.target.max_length
        if self.target.min_length is not None:
            schema["minItems"] = self.target.min_length
        elif not self.target.allow_empty:
            schema["minItems"] = 1
        return schema


class NonEmptyList(OpenApiSerializerFieldExtension):
    """`allow_empty=False` on a ListField refuses `[]`, which drf-spectacular leaves out: state
    it as minItems."""

    target_class = "rest_framework.fields.ListField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if not self.target.allow_empty and "minItems" not in schema:
            schema["minItems"] = 1
        return schema


class NonEmptyFile(OpenApiSerializerFieldExtension):
    """DRF refuses an empty upload (a 400) unless the field allows one: state it as minLength."""

    target_class = "rest_framework.fields.FileField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request" and not self.target.allow_empty_file:
            schema["minLength"] = 1
        return schema


class StrictFields(OpenApiSerializerExtension):
    """A serializer with api.serializers.StrictFieldsMixin refuses fields it does not declare:
    its request schema says so (`additionalProperties: false`), so a client or validator
    catches an unknown field before sending it."""

    target_class = "api.serializers.StrictFieldsMixin"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        if direction == "request":
            schema["additionalProperties"] = False
            if getattr(self.target, "replaced_whole", False):
                # drf-spectacular drops `required` from every PATCH body; this one replaces its
                # resource whole, so what a whole one needs stays required.
                schema["required"] = [
                    name
                    for name, field in self.target.fields.items()
                    if field.required and not field.read_only
                ]
        return schema


class NoNulText(OpenApiSerializerFieldExtension):
    """PostgreSQL text cannot hold NUL, so a request's strings may not carry one (a 400 from
    api.serializers.wrong_json_type): free text in a request body says so, and, where the field
    trims white space and refuses blanks, that one character must be something else."""

    target_class = "rest_framework.fields.CharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        # A RegexField's own pattern is added after this, from its validator.
        own_pattern = any(isinstance(v, RegexValidator) for v in self.target.validators)
        if (
            direction == "request"
            and not own_pattern
            and not {"pattern", "format", "enum"} & set(schema)
        ):
            blank_refused = self.target.trim_whitespace and not self.target.allow_blank
            schema["pattern"] = NO_NUL_NOT_BLANK if blank_refused else NO_NUL
        return schema


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
            if not any("oauth2" in entry for entry in operation.get("security", [])):
                # Scopes are OAuth's: an operation without that scheme (the person's own
                # self-service routes) never answers "lacks a scope".
                del needed["403"]
            if "{" in path:
                needed["404"] = "No such object, or not one your organisation may see."
            if operation.get("parameters") or operation.get("requestBody"):
                # 400 is "does not match the schema"; a rule refusing what the schema allows is
                # a 422 (api.serializers.RULE, api.errors.Unprocessable).
                needed["422"] = (
                    "The request matches the schema, but a business rule refuses it; see the "
                    "problem's `type` and `errors`."
                )
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


def each_object(node, visit) -> None:
    """Call `visit` on every JSON object in the document, depth first."""
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            each_object(value, visit)
    elif isinstance(node, list):
        for value in node:
            each_object(value, visit)


def local_times(result, generator, request, public):
    """Replace `format: time` with the local time pattern, everywhere in the document."""

    def visit(node):
        if node.get("type") == "string" and node.get("format") == "time":
            del node["format"]
            node.update(LOCAL_TIME)

    each_object(result, visit)
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


def component_name(code: str) -> str:
    return "Problem" + "".join(part.capitalize() for part in code.split("-"))


def problem_types(result, generator, request, public):
    """One component per problem type of the catalogue (api/problems.py): the Problem document
    with its `type` and `status` fixed and its extension members, each type's page linked.
    Written out whole rather than as `allOf` Problem: generated clients (openapi-python-client)
    cannot merge Problem's `type: string` with a constant one, and drop such components."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for entry in problems.CATALOGUE.values():
        status = (
            {"type": "integer", "const": entry.status}
            if entry.code != "oauth-error"
            else {"type": "integer", "enum": [400, 401, 429]}
        )
        schemas[component_name(entry.code)] = {
            **PROBLEM_SCHEMA,
            "description": f"{entry.means} {entry.fix} See {entry.uri}.",
            "properties": {
                **PROBLEM_SCHEMA["properties"],
                "type": {"type": "string", "const": entry.uri, "description": "This type's URI."},
                "status": {**status, "description": "The HTTP status code."},
                **entry.extensions,
            },
        }
    return result


# PostgreSQL text cannot hold NUL, so no path or query string may carry one (a 400 from
# api.middleware.ProblemDetailsMiddleware): every free-text parameter says so.


def no_nul_in_parameters(result, generator, request, public):
    """State the NUL refusal on every string parameter in the path or query string that has no
    pattern, enum or format of its own."""
    for item in result.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if (
                    parameter.get("in") in ("path", "query")
                    and schema.get("type") == "string"
                    and not {"pattern", "enum", "format", "const"} & set(schema)
                ):
                    schema["pattern"] = NO_NUL
                items = schema.get("items", {})
                if (
                    parameter.get("in") == "query"
                    and items.get("type") == "string"
                    and not {"pattern", "enum", "format", "const"} & set(items)
                ):
                    items["pattern"] = NO_NUL
    return result
