"""The HSDS 3.1 read API: every route's documents validate against the vendored compiled schemas
(tests/partners/hsds_schemas.py), every list parameter HSDS defines is answered or refused with
a problem, the safeguards are attributes under the network's published taxonomy, and no route
ever carries a confidential location."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from partners.hsds_terms import (
    SAFEGUARD_TAXONOMY,
    SERVICE_TYPES,
    safeguard_term_id,
    taxonomy_term_id,
)
from partners.models import SAFEGUARDS, Schedule
from tests.api.helpers import assert_problem
from tests.api.routes import api_routes
from tests.partners.hsds_schemas import validate

pytestmark = pytest.mark.django_db

CONFIDENTIAL = {
    "name": "Casa Escondida",
    "address_1": "Rua Secreta 7",
    "city": "Segredo",
    "region": "Lisboa",
    "postal_code": "9999-999",
    "latitude": 38.7312345,
    "longitude": -9.1512345,
    "confidential": True,
    "front_door_contact": "Call first",
}


@pytest.fixture
def directory(make_organisation, make_service):
    clinic = make_organisation(
        "Clínica Aberta",
        description="Free sexual health care.",
        website="https://clinica.example.org",
        email="hello@clinica.example.org",
        phone="+351 210 000 000",
    )
    service = make_service(
        clinic,
        name="Walk-in STI testing",
        description="Rapid tests, results in 20 minutes",
        taxonomy=["sti-testing", "hiv-prep-pep"],
        languages=["pt", "th", "pt-BR"],
        minimum_age=16,
        fees_description="Free",
        no_id_required=True,
        walk_in=True,
        locations=[
            {
                "name": "Clinic",
                "address_1": "Rua da Palma 1",
                "city": "Lisboa",
                "region": "Lisboa",
                "postal_code": "1100-001",
                "country": "PT",
                "latitude": 38.7169,
                "longitude": -9.1399,
                "time_zone": "Europe/Lisbon",
                "schedules": [{"weekday": 1, "opens_at": "10:00", "closes_at": "18:00"}],
            },
            CONFIDENTIAL,
        ],
        capacity={
            "available": 3,
            "maximum": 10,
            "unit": "appointments",
            "description": "Same-day slots",
            "valid_until": timezone.now() + timedelta(hours=3),
        },
    )
    bare = make_service(make_organisation("Bare"), name="Bare service", locations=[])
    return clinic, service, bare


def public_location(service):
    return service.locations.get(confidential=False)


def secret_location(service):
    return service.locations.get(confidential=True)


# --- Validation -------------------------------------------------------------------------------

# Every HSDS route, each variant of its parameters, and the HSDS API path whose response
# schema it must satisfy.
ROUTES = {
    "hsds-root": ("/", [{}]),
    "hsds-service-list": ("/services", [{}, {"full": "true"}, {"minimal": "true"}]),
    "hsds-service-detail": ("/services/{id}", [{}]),
    "hsds-organization-list": (
        "/organizations",
        [{}, {"full": "true"}, {"full_service": "true"}],
    ),
    "hsds-organization-detail": ("/organizations/{id}", [{}, {"full_service": "true"}]),
    "hsds-service-at-location-list": ("/service_at_locations", [{}, {"full": "true"}]),
    "hsds-service-at-location-detail": ("/service_at_locations/{id}", [{}]),
    "hsds-taxonomy-list": ("/taxonomies", [{}]),
    "hsds-taxonomy-detail": ("/taxonomies/{id}", [{}]),
    "hsds-taxonomy-term-list": ("/taxonomy_terms", [{}]),
    "hsds-taxonomy-term-detail": ("/taxonomy_terms/{id}", [{}]),
}


def item_ids(name, directory) -> list[str]:
    clinic, service, bare = directory
    return {
        "hsds-service-detail": [str(service.pk), str(bare.pk)],
        "hsds-organization-detail": [str(clinic.pk), str(bare.organisation_id)],
        "hsds-service-at-location-detail": [str(public_location(service).pk)],
        "hsds-taxonomy-detail": [SERVICE_TYPES.id, SAFEGUARD_TAXONOMY.id],
        "hsds-taxonomy-term-detail": [
            taxonomy_term_id("sti-testing"),
            safeguard_term_id("trans_friendly"),
        ],
    }.get(name, [None])


def urls(directory):
    """Every (route name, URL, query, HSDS path) the API serves for this directory."""
    for route in api_routes():
        if not route.name.startswith("hsds-"):
            continue
        path, variants = ROUTES[route.name]
        for pk in item_ids(route.name, directory):
            url = route.template.format(pk=pk) if pk else route.template
            for query in variants:
                yield route.name, url, query, path


def test_every_hsds_route_is_in_this_file():
    served = {route.name for route in api_routes() if route.name.startswith("hsds-")}
    assert served == set(ROUTES)


def test_every_document_of_every_route_validates(client, directory):
    seen = set()
    for name, url, query, path in urls(directory):
        response = client.get(url, query)
        assert response.status_code == 200, (url, query, response.content)
        validate(path, response.json())
        seen.add(name)
    assert seen == set(ROUTES)


def test_empty_pages_validate(client, db):
    for path in ("/services", "/organizations", "/service_at_locations"):
        body = client.get(f"/api/v1/hsds{path}", {"search": "nothing like this"}).json()
        validate(path, body)
        assert body["empty"] and body["total_items"] == 0


def test_the_validation_does_catch_a_broken_export(client, directory):
    """Guards the guard: a schema that resolved to nothing would accept anything."""
    body = client.get(f"/api/v1/hsds/services/{directory[1].pk}").json()
    broken = {**body, "capacities": [{**body["capacities"][0], "available": "three"}]}
    del broken["name"]
    broken["service_at_locations"][0]["location"]["id"] = "not-a-uuid"
    with pytest.raises(AssertionError) as failure:
        validate("/services/{id}", broken)
    message = str(failure.value)
    assert "'name' is a required property" in message
    assert "'three' is not of type 'number'" in message
    assert "'not-a-uuid' is not a 'uuid'" in message
    location = client.get(
        f"/api/v1/hsds/service_at_locations/{public_location(directory[1]).pk}"
    ).json()
    with pytest.raises(AssertionError, match="'id' is a required property"):
        validate("/service_at_locations/{id}", {k: v for k, v in location.items() if k != "id"})


# --- Content ----------------------------------------------------------------------------------


def test_service_detail(client, directory):
    _, service, _ = directory
    body = client.get(f"/api/v1/hsds/services/{service.pk}").json()
    assert body["capacities"][0]["available"] == 3
    assert body["capacities"][0]["maximum"] == 10
    assert body["capacities"][0]["unit"]["name"] == "appointments"
    assert [sal["location"]["name"] for sal in body["service_at_locations"]] == ["Clinic"]
    schedule = body["service_at_locations"][0]["schedules"][0]
    assert (schedule["byday"], schedule["opens_at"], schedule["freq"]) == (
        "MO",
        "10:00:00",
        "WEEKLY",
    )
    types = [a for a in body["attributes"] if a["link_type"] == "service_type"]
    assert {a["taxonomy_term"]["code"] for a in types} == {"sti-testing", "hiv-prep-pep"}


def test_safeguards_are_attributes_under_the_published_taxonomy(client, directory):
    _, service, bare = directory
    body = client.get(f"/api/v1/hsds/services/{service.pk}").json()
    safeguards = {
        a["taxonomy_term"]["code"]: a
        for a in body["attributes"]
        if a["link_type"] == "access_safeguard"
    }
    assert set(safeguards) == {"no_id_required", "walk_in"}
    term = safeguards["no_id_required"]["taxonomy_term"]
    assert term["taxonomy_id"] == SAFEGUARD_TAXONOMY.id
    assert safeguards["no_id_required"]["taxonomy_term_id"] == term["id"]
    # The term and its taxonomy are published, so a 211 system can resolve both.
    published = client.get(f"/api/v1/hsds/taxonomy_terms/{term['id']}").json()
    assert published == term
    taxonomy = client.get(f"/api/v1/hsds/taxonomies/{term['taxonomy_id']}").json()
    assert taxonomy["name"] == SAFEGUARD_TAXONOMY.name
    assert taxonomy["uri"].endswith(f"/api/v1/hsds/taxonomies/{SAFEGUARD_TAXONOMY.id}")
    codes = [
        t["code"]
        for t in client.get(
            "/api/v1/hsds/taxonomy_terms", {"taxonomy_id": SAFEGUARD_TAXONOMY.id}
        ).json()["contents"]
    ]
    assert codes == list(SAFEGUARDS)
    bare_body = client.get(f"/api/v1/hsds/services/{bare.pk}").json()
    assert not [a for a in bare_body["attributes"] if a["link_type"] == "access_safeguard"]


def test_root(client, db):
    body = client.get("/api/v1/hsds").json()
    assert body["version"] == "3.1"
    assert body["openapi_url"].endswith("/api/schema")


def test_service_at_locations(client, directory):
    _, service, _ = directory
    location = public_location(service)
    page = client.get("/api/v1/hsds/service_at_locations").json()
    assert [row["id"] for row in page["contents"]] == [str(location.pk)]
    assert page["contents"][0]["service"]["name"] == "Walk-in STI testing"
    item = client.get(f"/api/v1/hsds/service_at_locations/{location.pk}").json()
    assert item["location"]["addresses"][0]["postal_code"] == "1100-001"
    assert item["schedules"][0]["service_at_location_id"] == str(location.pk)

    def ids(**params):
        body = client.get("/api/v1/hsds/service_at_locations", params).json()
        return [row["id"] for row in body["contents"]]

    assert ids(postcode="1100 001") == []
    assert ids(postcode="1100-001") == [str(location.pk)]
    assert ids(postcode=" 1100-001 ".upper()) == [str(location.pk)]
    assert ids(taxonomy_term_id="walk_in") == [str(location.pk)]
    assert ids(taxonomy_term_id="anonymous_access") == []
    assert ids(organization_id=str(service.organisation_id)) == [str(location.pk)]
    assert ids(search="rapid") == [str(location.pk)]
    assert ids(search="nothing") == []


def test_organization_detail_and_page(client, directory):
    clinic, service, _ = directory
    body = client.get(f"/api/v1/hsds/organizations/{clinic.pk}").json()
    assert [s["id"] for s in body["services"]] == [str(service.pk)]
    assert "service_at_locations" not in body["services"][0]
    assert body["phones"][0]["number"] == "+351 210 000 000"
    full = client.get(f"/api/v1/hsds/organizations/{clinic.pk}", {"full_service": "true"}).json()
    assert full["services"][0]["service_at_locations"][0]["location"]["name"] == "Clinic"
    page = client.get("/api/v1/hsds/organizations").json()
    assert page["total_items"] == 3  # with the caller's own organisation
    only = client.get("/api/v1/hsds/organizations", {"taxonomy_term_id": "walk_in"}).json()
    assert [o["id"] for o in only["contents"]] == [str(clinic.pk)]
    typed = client.get("/api/v1/hsds/organizations", {"taxonomy_id": SAFEGUARD_TAXONOMY.id})
    assert typed.json()["total_items"] == 1


def test_service_filters(client, directory):
    clinic, service, bare = directory

    def ids(**params):
        return [row["id"] for row in client.get("/api/v1/hsds/services", params).json()["contents"]]

    assert ids(organization_id=str(clinic.pk)) == [str(service.pk)]
    assert ids(taxonomy_term_id=taxonomy_term_id("hiv-prep-pep")) == [str(service.pk)]
    assert ids(taxonomy_term_id="sti-testing") == sorted([str(service.pk), str(bare.pk)])
    assert ids(taxonomy_term_id=safeguard_term_id("no_id_required")) == [str(service.pk)]
    assert ids(taxonomy_id=SAFEGUARD_TAXONOMY.id) == [str(service.pk)]
    assert ids(taxonomy_id="srn") == sorted([str(service.pk), str(bare.pk)])
    assert ids(search="rapid") == [str(service.pk)]
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert ids(modified_after=later) == []
    earlier = (timezone.now() - timedelta(hours=1)).isoformat()
    assert len(ids(modified_after=earlier)) == 2
    minimal = client.get("/api/v1/hsds/services", {"minimal": "true"}).json()["contents"]
    assert all(set(row) == {"id", "name", "status", "last_modified"} for row in minimal)


def test_taxonomy_term_parameters(client, db):
    def codes(**params):
        body = client.get("/api/v1/hsds/taxonomy_terms", {"per_page": 100, **params}).json()
        return [t["code"] for t in body["contents"]]

    everything = codes()
    assert "sti-testing" in everything and "walk_in" in everything
    assert codes(top_only="true") == everything
    assert codes(parent_id=taxonomy_term_id("sti-testing")) == []
    assert codes(taxonomy_id="srn") == [c for c in everything if "_" not in c]
    assert codes(search="walk") == ["walk_in"]
    taxonomies = client.get("/api/v1/hsds/taxonomies", {"search": "safeguard"}).json()
    assert [t["id"] for t in taxonomies["contents"]] == [SAFEGUARD_TAXONOMY.id]


def test_page_and_per_page_are_honoured(client, directory):
    body = client.get("/api/v1/hsds/services", {"per_page": 1}).json()
    assert (body["total_items"], body["total_pages"], body["size"]) == (2, 2, 1)
    assert body["first_page"] and not body["last_page"]
    second = client.get("/api/v1/hsds/services", {"per_page": 1, "page": 2}).json()
    assert second["last_page"] and not second["first_page"]
    assert {body["contents"][0]["id"], second["contents"][0]["id"]} == {
        str(s.pk) for s in directory[1:]
    }
    beyond = client.get("/api/v1/hsds/services", {"per_page": 1, "page": 3}).json()
    assert beyond["empty"] and beyond["contents"] == []
    terms = client.get("/api/v1/hsds/taxonomy_terms", {"per_page": 2, "page": 2}).json()
    assert terms["size"] == 2 and terms["page_number"] == 2


def test_export_leaves_out_inactive_services(client, directory):
    _, service, _ = directory
    service.status = "inactive"
    service.save()
    assert client.get(f"/api/v1/hsds/services/{service.pk}").status_code == 404
    assert client.get("/api/v1/hsds/services").json()["total_items"] == 1
    location = public_location(service)
    assert client.get(f"/api/v1/hsds/service_at_locations/{location.pk}").status_code == 404


@pytest.mark.parametrize(
    ("url", "params", "pointer"),
    [
        ("/services", {"page": "0"}, "/page"),
        ("/services", {"page": "99999999999999999999"}, "/page"),
        ("/services", {"per_page": "1000"}, "/per_page"),
        ("/services", {"per_page": "many"}, "/per_page"),
        ("/services", {"modified_after": "yesterday"}, "/modified_after"),
        ("/services", {"organization_id": "nope"}, "/organization_id"),
        ("/services", {"taxonomy_term_id": "astrology"}, "/taxonomy_term_id"),
        ("/services", {"taxonomy_id": "astrology"}, "/taxonomy_id"),
        ("/services", {"limit": "10"}, "/limit"),
        ("/services", {"format": "ndjson"}, "/format"),
        ("/services", {"full": "yes please"}, "/full"),
        ("/services", {"full": "true", "minimal": "true"}, "/minimal"),
        ("/services", {"minimal": "true", "per_page": "1001"}, "/per_page"),
        ("/organizations", {"full_service": "maybe"}, "/full_service"),
        ("/organizations", {"organization_id": str(taxonomy_term_id("x"))}, "/organization_id"),
        ("/service_at_locations", {"proximity": "1000"}, "/proximity"),
        ("/service_at_locations", {"minimal": "true"}, "/minimal"),
        ("/taxonomies", {"taxonomy_id": "srn"}, "/taxonomy_id"),
        ("/taxonomy_terms", {"top_only": "always"}, "/top_only"),
        ("/taxonomy_terms", {"parent_id": "nope"}, "/parent_id"),
        (f"/taxonomies/{SERVICE_TYPES.id}", {"full": "true"}, "/full"),
        ("", {"page": "1"}, "/page"),
    ],
)
def test_every_parameter_is_answered_or_refused_with_a_problem(
    client, directory, url, params, pointer
):
    response = client.get(f"/api/v1/hsds{url}", params)
    # Within the schema but refused by what this directory offers (a full page of 1000, full
    # and minimal together, proximity): 422; outside the schema: 400.
    rules = [
        {"per_page": "1000"},
        {"full": "true", "minimal": "true"},
        {"proximity": "1000"},
        {"taxonomy_term_id": "astrology"},
        {"taxonomy_id": "astrology"},
    ]
    body = assert_problem(response, 422 if params in rules else 400)
    assert body["errors"][0]["pointer"] == pointer
    assert body["detail"]


def test_minimal_pages_may_hold_a_whole_directory(client, directory):
    body = client.get("/api/v1/hsds/services", {"minimal": "true", "per_page": 1000}).json()
    assert body["total_pages"] == 1 and body["size"] == 2


# --- Confidential locations -------------------------------------------------------------------


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_no_route_ever_carries_a_confidential_location(
    client, organisation, directory, make_partnership, route
):
    """Even to an active partner, who sees the address through the directory API: an HSDS
    export is copied onward, beyond the partnerships that gate it. One test per route, each
    with every variant of its parameters."""
    clinic, service, _ = directory
    make_partnership(clinic, organisation)
    secret = secret_location(service)
    canaries = [str(secret.pk), "Casa Escondida", "Rua Secreta", "Segredo", "9999-999"]
    canaries += [repr(CONFIDENTIAL["latitude"]), repr(CONFIDENTIAL["longitude"])]
    calls = [(url, query) for name, url, query, _ in urls(directory) if name == route]
    assert calls
    for url, query in calls:
        response = client.get(url, query)
        assert response.status_code == 200
        text = json.dumps(response.json())
        assert not [c for c in canaries if c in text], (url, query)


def test_a_confidential_location_is_not_found_by_id_or_filter(
    client, organisation, directory, make_partnership
):
    clinic, service, _ = directory
    make_partnership(clinic, organisation)
    secret = secret_location(service)
    assert_problem(client.get(f"/api/v1/hsds/service_at_locations/{secret.pk}"), 404)
    for params in ({"postcode": "9999-999"}, {"organization_id": str(clinic.pk), "full": "true"}):
        body = client.get("/api/v1/hsds/service_at_locations", params).json()
        assert str(secret.pk) not in json.dumps(body)


# --- Queries ----------------------------------------------------------------------------------


# Each read with its query count (after the token and its rate-limit count): these must not
# grow with the number of rows on the page.
PAGE_READS = [
    ("/api/v1/hsds/services", {}, 3),  # count, page
    ("/api/v1/hsds/services", {"full": "true"}, 6),  # + locations, schedules, terms
    ("/api/v1/hsds/service_at_locations", {}, 3),
    ("/api/v1/hsds/service_at_locations", {"full": "true"}, 4),  # + schedules
    ("/api/v1/hsds/organizations", {"full": "true"}, 4),  # + services
    ("/api/v1/hsds/organizations", {"full_service": "true"}, 7),  # + locations, schedules, terms
    ("/api/v1/hsds/taxonomy_terms", {}, 2),  # terms
]


def test_query_counts_do_not_grow_with_the_page(
    client, directory, make_service, django_assert_num_queries
):
    """Two sizes of directory, the same statements for each page, and every page whole."""
    _, service, _ = directory

    def grow(count):
        for _ in range(count):
            added = make_service(name="More", no_id_required=True)
            Schedule.objects.bulk_create(
                Schedule(location=location, weekday=day, opens_at="09:00", closes_at="17:00")
                for location in added.locations.all()
                for day in range(2, 8)
            )

    def read_all():
        # The service with its organisation and capacity, locations, schedules, terms.
        with django_assert_num_queries(5):
            response = client.get(f"/api/v1/hsds/services/{service.pk}")
        assert response.status_code == 200
        assert response.json()["id"] == str(service.pk)
        totals = []
        for path, params, queries in PAGE_READS:
            with django_assert_num_queries(queries):
                response = client.get(path, {"per_page": 100, **params})
            assert response.status_code == 200, (path, params)
            page = response.json()
            assert len(page["contents"]) == page["total_items"], (path, params)
            totals.append(page["total_items"])
        return totals

    grow(1)
    small = read_all()
    grow(6)
    large = read_all()
    # Every list of services, locations and organisations grew by the six added; the taxonomy
    # did not.
    assert [b - a for a, b in zip(small, large, strict=True)] == [6, 6, 6, 6, 6, 6, 0]
