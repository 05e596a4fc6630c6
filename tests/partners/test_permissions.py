"""One matrix over every directory endpoint: no token is 401, a token without the operation's
scope is 403 naming it, and nothing changes either way."""

import pytest

from api.models import Event
from partners.models import Capacity, DirectoryImport, Partnership, Service

pytestmark = pytest.mark.django_db

READ, WRITE, CAPACITY = "directory:read", "directory:write", "capacity:write"

# Every directory read: a GET that needs directory:read.
READS = [
    "/api/v1/organisations",
    "/api/v1/organisations/{org}",
    "/api/v1/organisations/me",
    "/api/v1/taxonomy-terms",
    "/api/v1/services",
    "/api/v1/services/{service}",
    "/api/v1/services/{service}/capacity",
    "/api/v1/services/{service}/capacity/history",
    "/api/v1/partnerships",
    "/api/v1/partnerships/{partnership}",
    "/api/v1/hsds/services",
    "/api/v1/hsds/services/{service}",
    "/api/v1/hsds/organizations",
    "/api/v1/hsds/organizations/{org}",
    "/api/v1/hsds",
    "/api/v1/directory/imports/{job}",
    "/api/v1/hsds/service_at_locations",
    "/api/v1/hsds/taxonomies",
    "/api/v1/hsds/taxonomy_terms",
]
# (method, path template, body, scope needed): the reads above, then every other call.
ENDPOINTS = [
    *[("get", path, None, READ) for path in READS],
    ("patch", "/api/v1/organisations/me", {"description": "x"}, WRITE),
    ("post", "/api/v1/services/search", {}, READ),
    ("post", "/api/v1/services", {"name": "x", "taxonomy": ["food"]}, WRITE),
    ("patch", "/api/v1/services/{service}", {"name": "x"}, WRITE),
    ("post", "/api/v1/services/{service}/deactivate", None, WRITE),
    ("put", "/api/v1/services/{service}/capacity", {"available": 1}, CAPACITY),
    ("post", "/api/v1/capacity/bulk", {"items": []}, CAPACITY),
    ("post", "/api/v1/partnerships", {"partner_id": "{other}"}, WRITE),
    *[
        ("post", f"/api/v1/partnerships/{{partnership}}/{action}", None, WRITE)
        for action in ("accept", "decline", "suspend", "resume", "end")
    ],
    ("post", "/api/v1/directory/imports", {"format": "json"}, WRITE),
]
ALL = (READ, WRITE, CAPACITY)


@pytest.fixture
def world(organisation, make_organisation, make_service, make_partnership):
    other = make_organisation("Other")
    return {
        "org": organisation.pk,
        "other": other.pk,
        "service": make_service(organisation).pk,
        "partnership": make_partnership(other, organisation, status="proposed").pk,
        "job": DirectoryImport.objects.create(organisation=organisation, format="json", size=2).pk,
    }


def state() -> tuple:
    return (
        list(Service.objects.values_list("name", "status")),
        list(Capacity.objects.values_list("version", flat=True)),
        list(Partnership.objects.values_list("status", flat=True)),
        Event.objects.count(),
    )


def call(client, method, template, body, world):
    path = template.format(**world)
    if body is not None:
        body = {k: (v.format(**world) if isinstance(v, str) else v) for k, v in body.items()}
    return getattr(client, method)(path, body, format="json")


@pytest.mark.parametrize(("method", "template", "body", "scope"), ENDPOINTS)
def test_without_the_scope_is_403_naming_it(
    api_client_for, organisation, world, method, template, body, scope
):
    client = api_client_for(organisation, scopes=[s for s in ALL if s != scope])
    before = state()
    response = call(client, method, template, body, world)
    assert response.status_code == 403, response.content
    assert response.json()["missing_scopes"] == [scope]
    assert state() == before


@pytest.mark.parametrize(("method", "template", "body", "scope"), ENDPOINTS)
def test_without_a_token_is_401(anonymous, world, method, template, body, scope):
    before = state()
    response = call(anonymous, method, template, body, world)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert state() == before


@pytest.mark.parametrize(("method", "template", "body", "scope"), ENDPOINTS)
def test_with_only_that_scope_it_is_not_refused_for_scope(
    api_client_for, organisation, world, method, template, body, scope
):
    client = api_client_for(organisation, scopes=[scope])
    response = call(client, method, template, body, world)
    assert response.status_code != 403 or "missing_scopes" not in response.json()
