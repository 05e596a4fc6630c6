"""What an integrator reads in the OpenAPI document: every parameter and nearly every property
described, no maintainer docstring in it, verb operationIds, readable enum names, the response
headers the API sends, and a schema and an example on every error response."""

import re

from tests.api.test_openapi import generated, operations, schema  # noqa: F401 (fixtures)

HEADERS = {
    "ETag",
    "Location",
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "Idempotent-Replayed",
    "X-Request-ID",
}


def resolve(document, node):
    while "$ref" in node:
        section, name = node["$ref"].split("/")[-2:]
        node = document["components"][section][name]
    return node


def properties(schema_node, name):
    for prop, value in (schema_node.get("properties") or {}).items():
        yield f"{name}.{prop}", value
        yield from properties(value, f"{name}.{prop}")
        if isinstance(value.get("items"), dict):
            yield from properties(value["items"], f"{name}.{prop}[]")


def all_properties(document):
    for name, component in document["components"]["schemas"].items():
        yield from properties(component, name)
        for key in ("allOf", "oneOf", "anyOf"):
            for part in component.get(key, []):
                yield from properties(part, name)


def test_every_parameter_is_described(schema):  # noqa: F811
    bare = [
        f"{method} {path} {resolve(schema, parameter)['name']}"
        for path, method, operation in operations(schema)
        for parameter in operation.get("parameters", [])
        if not resolve(schema, parameter).get("description")
    ]
    assert not bare


def test_at_least_95_percent_of_properties_are_described(schema):  # noqa: F811
    found = list(all_properties(schema))
    bare = [name for name, value in found if not value.get("description")]
    assert len(found) > 400
    assert len(bare) / len(found) <= 0.05, bare


def test_no_maintainer_docstring_becomes_a_schema_description(schema):  # noqa: F811
    # A class, a module of this code base, or a view's context: words for maintainers.
    code = re.compile(r"serializer|\b(api|partners|referrals)\.[a-z_]+|\bcontext\b")
    leaked = [
        name
        for name, component in schema["components"]["schemas"].items()
        if "Reject fields" in component.get("description", "")
        or code.search(component.get("description", "").lower())
    ]
    assert not leaked


def test_operation_ids_are_verbs_without_drf_suffixes(schema):  # noqa: F811
    ids = [operation["operationId"] for _, _, operation in operations(schema)]
    assert len(ids) == len(set(ids))
    verbs = {
        "list", "get", "create", "update", "delete", "bulk_update", "accept", "cancel", "claim",
        "complete", "deactivate", "decline", "end", "hold", "ping", "receive", "redeliver",
        "renew", "resume", "revoke", "rotate", "search", "start", "suspend", "withdraw",
    }  # fmt: skip
    for operation_id in ids:
        assert re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", operation_id), operation_id
        assert operation_id.startswith(tuple(f"{verb}_" for verb in verbs)), operation_id
        for suffix in ("retrieve", "partial_update", "destroy"):
            assert suffix not in operation_id, operation_id
    for expected in ("get_me", "update_my_organisation", "get_audit_head", "get_referral"):
        assert expected in ids


def test_enums_of_non_identifier_values_carry_varnames(schema):  # noqa: F811
    found = {}

    def walk(node):
        if isinstance(node, dict):
            values = node.get("enum")
            if values and any(not re.match(r"[A-Za-z]", str(value)) for value in values):
                found[tuple(values)] = node.get("x-enum-varnames")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema["components"])
    assert ("<5",) in found
    assert any("18_24" in values for values in found)
    for values, names in found.items():
        assert names and len(names) == len(values), values
        assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in names), names
        assert len(set(names)) == len(names)
    assert found[("<5",)] == ["FEWER_THAN_5"]


def declared(schema, path, method, code):  # noqa: F811
    return set(schema["paths"][path][method]["responses"][code].get("headers", {}))


def test_response_headers_are_declared(schema):  # noqa: F811
    assert set(schema["components"]["headers"]) >= HEADERS
    for path, method, operation in operations(schema):
        for code, response in operation["responses"].items():
            assert "X-Request-ID" in response.get("headers", {}), (method, path, code)
            for header in response.get("headers", {}).values():
                assert resolve(schema, header)["description"]
    created = declared(schema, "/api/v1/referrals", "post", "201")
    assert {"Location", "ETag", "Idempotent-Replayed", "RateLimit", "RateLimit-Policy"} <= created
    assert "ETag" in declared(schema, "/api/v1/referrals/{id}", "get", "200")
    assert "ETag" in declared(schema, "/api/v1/referrals/{id}/accept", "post", "200")
    assert "ETag" in declared(schema, "/api/v1/services/{id}/capacity", "get", "200")
    assert "ETag" not in declared(schema, "/api/v1/referrals/{id}/notes", "get", "200")
    assert "Retry-After" in declared(schema, "/api/v1/referrals", "get", "429")
    assert "RateLimit" not in declared(schema, "/api/v1/referrals", "get", "401")


def test_every_error_response_has_a_schema_and_an_example(schema):  # noqa: F811
    count = 0
    for path, method, operation in operations(schema):
        for code, response in operation["responses"].items():
            if code[0] not in "45":
                continue
            count += 1
            assert response.get("content"), (method, path, code)
            for media in response["content"].values():
                assert media.get("schema"), (method, path, code)
                examples = list(media.get("examples", {}).values())
                if "example" in media:
                    examples.append({"value": media["example"]})
                assert examples, (method, path, code)
                for example in examples:
                    assert example["value"]["status"] == int(code), (method, path, code)
    assert count > 300
