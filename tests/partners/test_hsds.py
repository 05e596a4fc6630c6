"""The HSDS 3.1 export validated against the vendored HSDS schemas (partners/hsds/), every
`$ref` resolved from local files, formats checked."""

import json
from datetime import timedelta
from functools import cache
from pathlib import Path

import pytest
from django.utils import timezone
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from partners.api.hsds import taxonomy_term_id
from partners.models import Schedule

pytestmark = pytest.mark.django_db

HSDS = Path(__file__).resolve().parents[2] / "partners" / "hsds"
UPSTREAM = "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/"
OPENAPI = "urn:hsds:openapi.json"


@cache
def registry() -> Registry:
    """Each vendored file under the URL upstream publishes it at, so relative `$ref`s
    (`"location.json"`) and the API's absolute ones resolve here, never on the network."""

    def resource(path: Path) -> Resource:
        return Resource.from_contents(
            json.loads(path.read_text()), default_specification=DRAFT202012
        )

    pairs = []
    for path in sorted((HSDS / "schema").glob("*.json")):
        pairs.append((UPSTREAM + path.name, resource(path)))
    for name in ("service", "organization"):
        pairs.append(
            (f"{UPSTREAM}compiled/{name}.json", resource(HSDS / "schema" / f"{name}.json"))
        )
    for path in sorted((HSDS / "compiled").glob("*.json")):
        pairs.append((f"{UPSTREAM}compiled/{path.name}", resource(path)))
    pairs.append((OPENAPI, resource(HSDS / "openapi.json")))
    return Registry().with_resources(pairs)


def response_schema(path: str) -> dict:
    """The HSDS API's own response schema for a path, with its `#/components` refs made
    absolute against the vendored openapi.json. It names `compiled/service.json` and
    `compiled/organization.json`, which are the source schemas with every reference inlined:
    the vendored source schemas stand in for them."""
    api = registry().contents(OPENAPI)
    schema = api["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    text = json.dumps(schema).replace('"#/components/', f'"{OPENAPI}#/components/')
    for name in ("service", "organization"):
        text = text.replace(f"{UPSTREAM}compiled/{name}.json", f"{UPSTREAM}{name}.json")
    return json.loads(text)


def validate(path: str, document: dict) -> None:
    validator = Draft202012Validator(
        response_schema(path),
        registry=registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


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
            {
                "name": "Safe house",
                "address_1": "Rua Secreta 7",
                "region": "Lisboa",
                "latitude": 38.73,
                "longitude": -9.15,
                "confidential": True,
                "front_door_contact": "Call first",
            },
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


def test_service_detail_validates(client, directory):
    _, service, bare = directory
    for each in (service, bare):
        response = client.get(f"/api/v1/hsds/services/{each.pk}")
        assert response.status_code == 200
        validate("/services/{id}", response.json())
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
    assert {a["taxonomy_term"]["code"] for a in body["attributes"]} == {
        "sti-testing",
        "hiv-prep-pep",
    }


def test_service_page_validates(client, directory):
    response = client.get("/api/v1/hsds/services", {"per_page": 1})
    body = response.json()
    validate("/services", body)
    assert (body["total_items"], body["total_pages"], body["size"]) == (2, 2, 1)
    assert body["first_page"] and not body["last_page"]
    second = client.get("/api/v1/hsds/services", {"per_page": 1, "page": 2}).json()
    validate("/services", second)
    assert second["last_page"]
    assert {body["contents"][0]["id"], second["contents"][0]["id"]} == {
        str(s.pk) for s in directory[1:]
    }


def test_empty_page_validates(client, db):
    body = client.get("/api/v1/hsds/services").json()
    validate("/services", body)
    assert body["empty"] and body["total_items"] == 0


def test_organization_detail_and_page_validate(client, directory):
    clinic, service, _ = directory
    body = client.get(f"/api/v1/hsds/organizations/{clinic.pk}").json()
    validate("/organizations/{id}", body)
    assert [s["id"] for s in body["services"]] == [str(service.pk)]
    assert body["phones"][0]["number"] == "+351 210 000 000"
    page = client.get("/api/v1/hsds/organizations").json()
    validate("/organizations", page)
    assert page["total_items"] == 3  # with the caller's own organisation


def test_service_filters(client, directory):
    clinic, service, bare = directory

    def ids(**params):
        return [row["id"] for row in client.get("/api/v1/hsds/services", params).json()["contents"]]

    assert ids(organization_id=str(clinic.pk)) == [str(service.pk)]
    assert ids(taxonomy_term_id=taxonomy_term_id("hiv-prep-pep")) == [str(service.pk)]
    assert ids(taxonomy_term_id="sti-testing") == sorted([str(service.pk), str(bare.pk)])
    assert ids(search="rapid") == [str(service.pk)]
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert ids(modified_after=later) == []
    earlier = (timezone.now() - timedelta(hours=1)).isoformat()
    assert len(ids(modified_after=earlier)) == 2


def test_export_leaves_out_inactive_services(client, directory):
    _, service, _ = directory
    service.status = "inactive"
    service.save()
    assert client.get(f"/api/v1/hsds/services/{service.pk}").status_code == 404
    assert client.get("/api/v1/hsds/services").json()["total_items"] == 1


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"page": "0"}, "/page"),
        ({"page": "99999999999999999999"}, "/page"),
        ({"per_page": "1000"}, "/per_page"),
        ({"per_page": "many"}, "/per_page"),
        ({"modified_after": "yesterday"}, "/modified_after"),
        ({"organization_id": "nope"}, "/organization_id"),
        ({"taxonomy_term_id": "astrology"}, "/taxonomy_term_id"),
    ],
)
def test_bad_parameters_name_the_field(client, directory, params, pointer):
    response = client.get("/api/v1/hsds/services", params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == pointer


def test_detail_query_count_is_constant(client, directory, make_service, django_assert_num_queries):
    _, service, _ = directory
    location = service.locations.get(name="Clinic")
    Schedule.objects.bulk_create(
        Schedule(location=location, weekday=day, opens_at="09:00", closes_at="17:00")
        for day in range(2, 8)
    )
    # Token with its rate-limit count, service with organisation and capacity, locations,
    # schedules, terms.
    with django_assert_num_queries(5):
        client.get(f"/api/v1/hsds/services/{service.pk}")
    with django_assert_num_queries(3):
        client.get("/api/v1/hsds/services", {"per_page": 100})


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
