"""OpenAPI postprocessing for integrators: descriptions, verb operationIds, readable enum names,
the response headers the API sends, and an example on every error response. Each is a rule over
the whole document, so a new operation or serializer gets them without anyone remembering."""

import re

from drf_spectacular.plumbing import get_lib_doc_excludes

from api import problems, schema_glossary
from api.schema import component_name, each_object
from api.serializers import StrictFieldsMixin

METHODS = ("get", "put", "patch", "post", "delete")


def lib_doc_excludes():
    """Stop docstring look-up at the shared mixins: their docstrings are for maintainers, and
    drf-spectacular would otherwise make them the description of every serializer using one."""
    return [*get_lib_doc_excludes(), StrictFieldsMixin]


def _operations(result):
    for path, item in result.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


# Descriptions ------------------------------------------------------------------------------


def _describe_properties(name: str, schema: dict) -> None:
    for prop, value in (schema.get("properties") or {}).items():
        if not isinstance(value, dict):
            continue
        if not value.get("description"):
            text = schema_glossary.SCHEMA_PROPERTIES.get(
                f"{name}.{prop}"
            ) or schema_glossary.PROPERTIES.get(prop)
            if text:
                value["description"] = text
        _describe_properties(f"{name}.{prop}", value)
        if isinstance(value.get("items"), dict):
            _describe_properties(f"{name}.{prop}[]", value["items"])


def describe(result, generator, request, public):
    """Fill in descriptions the code does not state, from the glossary (see its docstring)."""
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        _describe_properties(name, schema)
        for key in ("allOf", "oneOf", "anyOf"):
            for part in schema.get(key, []):
                _describe_properties(name, part)
    for _, _, operation in _operations(result):
        for parameter in operation.get("parameters", []):
            if not parameter.get("description"):
                name = parameter["name"]
                text = schema_glossary.PARAMETERS.get(name) or schema_glossary.PROPERTIES.get(name)
                if text:
                    parameter["description"] = text
    return result


# operationIds ------------------------------------------------------------------------------

# drf-spectacular names an operation `<path words>_<action>`; an integrator reads (and a
# generated client calls) `<verb>_<object>`. The DRF actions become verbs; a custom action whose
# name holds a verb (VERBS) has it moved first; any other operation reads what it names: `get_`.
# The object is singular unless the verb acts on the whole collection (list, search).
DRF_ACTIONS = {
    "list": "list",
    "retrieve": "get",
    "create": "create",
    "partial_update": "update",
    "update": "update",
    "destroy": "delete",
}
VERBS = {
    "accept", "cancel", "claim", "complete", "deactivate", "decline", "end", "hold", "ping",
    "receive", "redeliver", "renew", "resume", "revoke", "rotate", "search", "start", "suspend",
    "withdraw",
}  # fmt: skip
COLLECTION_VERBS = {"list", "search"}
# Each collection's words, and what one of its items is called.
ITEMS = {
    "organisations_me": "my_organisation",
    "organisations": "organisation",
    "services": "service",
    "partnerships": "partnership",
    "referrals": "referral",
    "webhook_endpoints": "webhook_endpoint",
    "deliveries": "webhook_delivery",
    "directory_imports": "directory_import",
    "taxonomy_terms": "taxonomy_term",
    "hsds_organizations": "hsds_organization",
    "hsds_services": "hsds_service",
    "hsds_service_at_locations": "hsds_service_at_location",
    "hsds_taxonomies": "hsds_taxonomy",
    "hsds_taxonomy_terms": "hsds_taxonomy_term",
}


def verb_operation_id(operation_id: str) -> str:
    words = operation_id.split("_")
    verb = None
    for action in sorted(DRF_ACTIONS, key=len, reverse=True):
        tail = action.split("_")
        if len(words) > len(tail) and words[-len(tail) :] == tail:
            verb, words = DRF_ACTIONS[action], words[: -len(tail)]
            break
    if verb is None and (found := [i for i, word in enumerate(words) if word in VERBS]):
        verb = words.pop(found[-1])
    if words[-1] == "bulk":  # `capacity_bulk_update`: the bulk variant of the verb
        verb, words = f"bulk_{verb}", words[:-1]
    verb = verb or "get"
    obj = "_".join(words)
    for collection in sorted(ITEMS, key=len, reverse=True):
        whole = obj == collection
        if whole or obj.startswith(collection + "_"):
            if not (whole and verb in COLLECTION_VERBS) or collection == "organisations_me":
                obj = ITEMS[collection] + obj[len(collection) :]
            break
    return f"{verb}_{obj}"


def verb_operation_ids(result, generator, request, public):
    """Rename every operation to `<verb>_<object>` (see DRF_ACTIONS); two operations may not
    end with one name."""
    seen = {}
    for path, method, operation in _operations(result):
        new = verb_operation_id(operation["operationId"])
        if new in seen:
            raise ValueError(f"operationId {new} for {method} {path} and {seen[new]}")
        seen[new] = f"{method} {path}"
        operation["operationId"] = new
    return result


# Enum names --------------------------------------------------------------------------------

SYMBOLS = {"<": "fewer than ", ">": "more than ", "*": "all", "+": " plus"}


def _varname(value, prefix: str) -> str:
    text = str(value)
    for symbol, word in SYMBOLS.items():
        text = text.replace(symbol, word)
    name = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").upper()
    return f"{prefix}_{name}" if not name or name[0].isdigit() else name


def _needs_varnames(values) -> bool:
    return any(not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", str(value)) for value in values)


def enum_varnames(result, generator, request, public):
    """Enums with values that are no identifier (`18_24`, `<5`, `referral.received`) get
    `x-enum-varnames`, so generated clients name them readably (`AGE_BAND_18_24`)."""

    def walk(node, name):
        if isinstance(node, dict):
            values = node.get("enum")
            if values and "x-enum-varnames" not in node and _needs_varnames(values):
                prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Enum")).upper()
                node["x-enum-varnames"] = [_varname(value, prefix) for value in values]
            for value in node.values():
                walk(value, name)
        elif isinstance(node, list):
            for value in node:
                walk(value, name)

    for name, schema in result.get("components", {}).get("schemas", {}).items():
        walk(schema, name)
    return result


# Response headers --------------------------------------------------------------------------

HEADERS = {
    "X-Request-ID": {
        "description": "The request's id: yours when you sent a well-formed `X-Request-ID`, "
        "else a new one. Quote it when reporting a problem; it is in every log line.",
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": "IETF RateLimit: the policy, the requests remaining (`r`) and the "
        'seconds until the window resets (`t`), e.g. `"application";r=5990;t=42`.',
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": "IETF RateLimit-Policy: the policy's quota (`q`) per window of `w` "
        'seconds, e.g. `"application";q=6000;w=60`.',
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "ETag": {
        "description": 'The object\'s version, quoted (`"3"`). Send it as `If-Match` with the '
        "next change.",
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "The URL of the object created.",
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same `Idempotency-Key`: nothing new was created.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
# Operations that answer 201 with a Location (the others answer the object itself).
LOCATION = {("post", "/api/v1/referrals"), ("post", "/api/v1/directory/imports")}


def _header_names(operation: dict, name: str) -> set[str]:
    return {
        parameter["name"]
        for parameter in operation.get("parameters", [])
        if parameter.get("in") == "header"
    } & {name}


def _success_refs(operation: dict) -> set[str]:
    return {
        media.get("schema", {}).get("$ref", "")
        for code, response in operation.get("responses", {}).items()
        if code.startswith("2")
        for media in response.get("content", {}).values()
    } - {""}


def _etag_rule(result):
    """Which answers carry an ETag: those of an operation taking If-Match; a GET of its object
    (the object's own path, or the one an action such as `POST /referrals/{id}/accept` is on);
    and any other answer of that object's family (its create, its other actions) that returns
    the same schema as an If-Match operation does (the referral's summary)."""
    paths, refs = set(), set()
    for path, method, operation in _operations(result):
        if _header_names(operation, "If-Match"):
            paths.add(path)
            if method == "post":
                paths.add(path.rpartition("/")[0])
            refs |= _success_refs(operation)

    def sends(path, method, operation):
        if _header_names(operation, "If-Match") or (method == "get" and path in paths):
            return True
        family = (
            path in paths
            or path.rstrip("/") + "/{id}" in paths
            or any(path.startswith(other + "/") for other in paths)
        )
        return family and bool(_success_refs(operation) & refs)

    return sends


def declare_headers(result, generator, request, public):
    """Declare the headers each response carries (the middleware, throttles and views that set
    them are the source: api/middleware.py, api/throttling.py, api/idempotency.py)."""
    components = result.setdefault("components", {}).setdefault("headers", {})
    components.update(HEADERS)
    sends_etag = _etag_rule(result)
    ref = {name: {"$ref": f"#/components/headers/{name}"} for name in HEADERS}
    for path, method, operation in _operations(result):
        oauth = any("oauth2" in entry for entry in operation.get("security", []))
        idempotent = _header_names(operation, "Idempotency-Key")
        for code, response in operation.get("responses", {}).items():
            headers = response.setdefault("headers", {})
            names = ["X-Request-ID"]
            # gunicorn answers a 414 (api.server) before the API counts the request.
            if oauth and code not in ("401", "414"):
                names += ["RateLimit", "RateLimit-Policy"]
            if code in ("429", "503"):
                names.append("Retry-After")
            if code.startswith("2"):
                if sends_etag(path, method, operation):
                    names.append("ETag")
                if code in ("201", "202") and (method, path) in LOCATION:
                    names.append("Location")
                if idempotent:
                    names.append("Idempotent-Replayed")
            for name in dict.fromkeys(names):
                headers.setdefault(name, ref[name])
    return result


# Error examples ----------------------------------------------------------------------------


# An API operation's 403 is always a missing scope: no business rule answers 403, and the
# catalogue's `forbidden` is Django's own (the admin, CSRF).
EXAMPLE_TYPES = {403: "insufficient-scope"}


def _example_type(status: int, description: str) -> problems.ProblemType:
    """The first type of this status the description names (`wrong-party`), else the
    status's own."""
    for code in re.findall(r"`([a-z-]+)`", description):
        entry = problems.CATALOGUE.get(code)
        if entry is not None and entry.status == status:
            return entry
    return problems.lookup(EXAMPLE_TYPES.get(status), status)


def error_examples(result, generator, request, public):
    """Every error response shows an example problem document: the first catalogue type of its
    status that its description names, else the status's (api/problems.py), with the
    response's own description as the detail."""
    for path, _, operation in _operations(result):
        for code, response in operation.get("responses", {}).items():
            if code[0] not in "45":
                continue
            content = response.get("content", {})
            for media_type, media in content.items():
                if "example" in media or media.get("examples"):
                    continue
                entry = _example_type(int(code), str(response.get("description") or ""))
                # The media objects may be shared between responses: give each its own.
                content[media_type] = media = {**media}
                media["examples"] = {
                    entry.code: {
                        "summary": entry.title,
                        "value": {
                            "type": entry.uri,
                            "title": entry.title,
                            "status": int(code),
                            "detail": response.get("description") or entry.means,
                            "instance": path,
                        },
                    }
                }
    return result


# The token endpoint ------------------------------------------------------------------------

TOKEN_ERRORS = {
    "400": (
        "The request is refused: a grant other than `client_credentials` "
        "(`unsupported_grant_type`), a scope the application was not granted (`invalid_scope`), "
        "or a missing or malformed field (`invalid_request`). Send the form "
        "`application/x-www-form-urlencoded`.",
        "invalid_scope",
        "The application was not granted this scope.",
    ),
    "401": (
        "Unknown client id, wrong secret, or a suspended organisation (`invalid_client`).",
        "invalid_client",
        "Client authentication failed.",
    ),
    "429": (
        "Too many token requests for this client id (`slow_down`); see Retry-After.",
        "slow_down",
        "Too many requests for this client. Retry later.",
    ),
    "500": (
        "An unexpected error; the problem document never carries its details.",
        None,
        "An unexpected error occurred; it has been logged.",
    ),
}


def _token_path() -> str:
    from django.urls import reverse

    return reverse("oauth:token")


def add_token_endpoint(result, generator, request, public):
    """Document the OAuth token endpoint (django-oauth-toolkit's view, not a DRF one) with its
    form body, its answers, and the client authentication it takes."""
    from django.conf import settings

    schemes = result.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["clientBasic"] = {
        "type": "http",
        "scheme": "basic",
        "description": "The client id and secret from onboarding, as HTTP Basic credentials "
        "(client_secret_basic). Only the token endpoint takes them.",
    }
    path = _token_path()
    seconds = settings.OAUTH2_PROVIDER["ACCESS_TOKEN_EXPIRE_SECONDS"]
    scopes = " ".join(settings.SCOPES)
    responses = {
        "200": {
            "description": "An access token; send it as `Authorization: Bearer …`.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "access_token": {
                                "type": "string",
                                "description": "The bearer token.",
                            },
                            "token_type": {
                                "type": "string",
                                "enum": ["Bearer"],
                                "description": "Always `Bearer`.",
                            },
                            "expires_in": {
                                "type": "integer",
                                "description": "Seconds until the token expires.",
                            },
                            "scope": {
                                "type": "string",
                                "description": "The scopes granted, space-separated.",
                            },
                        },
                        "required": ["access_token", "token_type", "expires_in", "scope"],
                    },
                    "example": {
                        "access_token": "sr6Qz0o3Vx0tLbc1kW9mHq2Fj5YpT8nE",
                        "token_type": "Bearer",
                        "expires_in": seconds,
                        "scope": "directory:read referrals:read referrals:write",
                    },
                }
            },
        }
    }
    for code, (description, error, detail) in TOKEN_ERRORS.items():
        entry = problems.CATALOGUE["oauth-error"] if error else problems.lookup(None, int(code))
        component = component_name(entry.code)
        responses[code] = {
            "description": description,
            "content": {
                "application/problem+json": {
                    "schema": {"$ref": f"#/components/schemas/{component}"},
                    "example": {
                        "type": entry.uri,
                        "title": entry.title,
                        "status": int(code),
                        "detail": detail,
                        "instance": path,
                        **({"error": error, "error_description": detail} if error else {}),
                    },
                }
            },
        }
    result.setdefault("paths", {})[path] = {
        "post": {
            "operationId": "create_token",
            "summary": "Get an access token",
            "description": "The OAuth 2.0 client credentials grant (RFC 6749 §4.4). "
            "Authenticate with the client id and secret, as HTTP Basic credentials or as "
            f"`client_id` and `client_secret` in the form. Tokens last {seconds // 60} "
            "minutes; ask for a new one when it expires (there are no refresh tokens). The "
            "body is a form, not JSON.",
            "tags": ["oauth"],
            "security": [{"clientBasic": []}, {}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "grant_type": {
                                    "type": "string",
                                    "enum": ["client_credentials"],
                                    "description": "Always `client_credentials`.",
                                },
                                "scope": {
                                    "type": "string",
                                    "description": "Space-separated scopes, among those the "
                                    "application was granted (see the `oauth2` scheme); "
                                    "without it, all of them.",
                                },
                                "client_id": {
                                    "type": "string",
                                    "description": "The client id, when not sent as Basic.",
                                },
                                "client_secret": {
                                    "type": "string",
                                    "description": "The client secret, when not sent as Basic.",
                                },
                            },
                            "required": ["grant_type"],
                        },
                        "example": {"grant_type": "client_credentials", "scope": scopes},
                    }
                },
            },
            "responses": responses,
        }
    }
    return result


def unique_type_lists(result, generator, request, public):
    """drf-spectacular writes a nullable field that is also `allow_null` in OAS 3.1 as
    `type: [string, "null", "null"]`, which JSON Schema forbids (items must be unique)."""

    def visit(node):
        if isinstance(node.get("type"), list):
            node["type"] = list(dict.fromkeys(node["type"]))

    each_object(result, visit)
    return result
