"""Nothing is served undocumented and nothing documented is missing: the (path, method) pairs the
URL configuration serves equal the operations of the generated OpenAPI document, apart from an
explicit list of routes that are not part of the partner API."""

import re

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

from tests.api.routes import HTTP_METHODS, walk

# Served on purpose and documented elsewhere (or nowhere, being for operators), each with why.
NOT_PARTNER_API = {
    "/admin": "Django admin for network stewards (session login, not OAuth)",
    "/api/schema": "the OpenAPI document itself",
    "/api/docs": "Swagger UI over the document",
    "/api/redoc": "Redoc over the document",
    "/healthz": "liveness for the load balancer",
    "/readyz": "readiness for the load balancer",
    "/oauth": "OAuth 2.0 endpoints (RFC 6749, 7009, 7662), described by the metadata below",
    "/.well-known": "RFC 8414 authorization server metadata",
}


def excluded(template: str) -> bool:
    return any(template == p or template.startswith(p + "/") for p in NOT_PARTNER_API)


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
    for prefix in NOT_PARTNER_API:
        assert any(t == prefix or t.startswith(prefix + "/") for t in templates), prefix


def test_the_partner_api_is_not_empty(served):
    # Guards against a resolver walk that silently finds nothing.
    assert len(served) > 10
    assert ("/api/v1/me", "get") in served
