"""Nothing is served undocumented and nothing documented is missing: the (path, method) pairs the
URL configuration serves equal the operations of the generated OpenAPI document, apart from an
explicit list of routes that are not part of the partner API, and apart from the FHIR facade,
whose own documentation is its CapabilityStatement (held equal to its routes below)."""

import re

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.api.routes import HTTP_METHODS, walk

# Served on purpose and documented elsewhere (or nowhere, being for operators), each with why.
NOT_PARTNER_API = {
    "/admin": "Django admin for network stewards (session login, not OAuth)",
    "/api/schema": "the OpenAPI document itself",
    "/api/docs": "Swagger UI over the document",
    "/api/redoc": "Redoc over the document",
    "/healthz": "liveness for the load balancer",
    "/problems": "a page per problem type, which each problem's `type` names (api/problems.py)",
    "/readyz": "readiness for the load balancer",
    # The token endpoint is documented (the client credentials grant is every integrator's
    # first call); revocation and introspection are in the metadata below.
    "/oauth/revoke_token": "OAuth 2.0 token revocation (RFC 7009)",
    "/oauth/introspect": "OAuth 2.0 token introspection (RFC 7662), for resource servers",
    "/.well-known": "RFC 8414 authorization server metadata",
    "/me": "the person's HTML page; its operations are the documented /api/v1/self routes'",
}
# Documented by a standard's own means instead of OpenAPI: the prefix, and the test that holds
# its routes equal to that documentation.
DOCUMENTED_ELSEWHERE = {
    "/fhir/r4": "the FHIR R4 facade: its CapabilityStatement (GET /fhir/r4/metadata), see "
    "test_every_fhir_route_is_in_the_capability_statement",
}
FHIR = "/fhir/r4"


def excluded(template: str) -> bool:
    prefixes = (*NOT_PARTNER_API, *DOCUMENTED_ELSEWHERE)
    return any(template == p or template.startswith(p + "/") for p in prefixes)


def shape(path: str) -> str:
    return re.sub(r"{[^}]+}", "{}", "/" + path.strip("/"))


@pytest.fixture(scope="module")
def documented() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    GENERATOR_STATS.reset()  # test_openapi counts warnings from its own generation only
    return {
        (shape(path), method)
        for path, item in schema["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


@pytest.fixture(scope="module")
def served() -> set[tuple[str, str]]:
    return {
        (route.shape, method)
        for route in walk()
        if not excluded(route.template)
        for method in route.methods
    }


def test_every_served_route_is_documented(served, documented):
    undocumented = sorted(served - documented)
    assert not undocumented, (
        "served but not in the OpenAPI document (document it, or add it to NOT_PARTNER_API "
        f"with a reason): {undocumented}"
    )


def test_every_documented_operation_is_served(served, documented):
    unserved = sorted(documented - served)
    assert not unserved, f"documented but no route serves it: {unserved}"


def test_the_allowlist_names_only_routes_that_exist():
    templates = [route.template for route in walk()]
    for prefix in (*NOT_PARTNER_API, *DOCUMENTED_ELSEWHERE):
        assert any(t == prefix or t.startswith(prefix + "/") for t in templates), prefix


def test_the_partner_api_is_not_empty(served):
    # Guards against a resolver walk that silently finds nothing.
    assert len(served) > 10
    assert ("/api/v1/me", "get") in served


def capability_operations(statement: dict) -> set[tuple[str, str]]:
    """The (path, method) pairs a CapabilityStatement promises, by FHIR's RESTful API."""
    instance = {"read": "get", "update": "put", "patch": "patch", "delete": "delete"}
    kind = {"search-type": "get", "create": "post"}
    (rest,) = statement["rest"]
    out = {(FHIR + "/metadata", "get")}
    out |= {(FHIR, "post") for item in rest.get("interaction", []) if item["code"] == "transaction"}
    for resource in rest["resource"]:
        for item in resource["interaction"]:
            code = item["code"]
            if code in instance:
                out.add((f"{FHIR}/{resource['type']}/{{}}", instance[code]))
            else:
                out.add((f"{FHIR}/{resource['type']}", kind[code]))
    return out


@pytest.mark.django_db
def test_every_fhir_route_is_in_the_capability_statement():
    """FHIR's own documentation of a server is its CapabilityStatement: what it lists is
    exactly what is served, no more and no less."""
    response = APIClient().get(FHIR + "/metadata")
    assert response.status_code == 200, response.content
    served = {
        (route.shape, method)
        for route in walk()
        if route.template == FHIR or route.template.startswith(FHIR + "/")
        for method in route.methods
    }
    assert len(served) > 10
    assert served == capability_operations(response.json())
