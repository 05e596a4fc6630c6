"""Confidential locations: street address and coordinates only for the owner and its active
partners; everyone else gets region, front-door contact and a distance rounded to the km."""

import pytest

from tests.partners.conftest import LISBON, offset

pytestmark = pytest.mark.django_db

HIDDEN = ("address_1", "city", "postal_code", "latitude", "longitude")


@pytest.fixture
def shelter(make_organisation, make_service):
    owner = make_organisation("Casa Segura", kind="shelter")
    point = offset(km_north=3.4)
    service = make_service(
        owner,
        name="Safe house beds",
        taxonomy=["emergency-shelter"],
        locations=[
            {
                "name": "Safe house",
                "address_1": "Rua Secreta 7",
                "city": "Lisboa",
                "postal_code": "1100-001",
                "region": "Lisboa",
                "country": "PT",
                "latitude": point[0],
                "longitude": point[1],
                "time_zone": "Europe/Lisbon",
                "confidential": True,
                "front_door_contact": "Call +351 210 000 001",
            }
        ],
    )
    return service


def search_location(client) -> tuple[dict, dict]:
    response = client.post(
        "/api/v1/services/search",
        {"near": f"{LISBON[0]},{LISBON[1]}", "radius_km": 10},
        format="json",
    )
    assert response.status_code == 200
    result = response.json()["results"][0]
    return result, result["locations"][0]


def detail_location(client, service) -> dict:
    return client.get(f"/api/v1/services/{service.pk}").json()["locations"][0]


def test_non_partner_sees_region_contact_and_rounded_distance(client, shelter):
    result, location = search_location(client)
    for name in HIDDEN:
        assert location[name] is None
    assert location["region"] == "Lisboa"
    assert location["front_door_contact"] == "Call +351 210 000 001"
    assert location["distance_km"] == 3
    assert result["distance_km"] == 3
    detail = detail_location(client, shelter)
    for name in HIDDEN:
        assert detail[name] is None
    assert detail["front_door_contact"] == "Call +351 210 000 001"
    assert "Rua Secreta" not in client.get(f"/api/v1/services/{shelter.pk}").content.decode()


def test_active_partner_sees_the_address(client, organisation, shelter, make_partnership):
    make_partnership(shelter.organisation, organisation)
    result, location = search_location(client)
    assert location["address_1"] == "Rua Secreta 7"
    assert result["distance_km"] == pytest.approx(3.4, abs=0.05)
    assert location["latitude"] == pytest.approx(shelter.locations.get().latitude)
    assert location["distance_km"] == pytest.approx(3.4, abs=0.05)
    assert location["distance_km"] != round(location["distance_km"])
    assert detail_location(client, shelter)["address_1"] == "Rua Secreta 7"


@pytest.mark.parametrize("status", ["proposed", "suspended", "ended", "declined"])
def test_partnership_that_is_not_active_reveals_nothing(
    client, organisation, shelter, make_partnership, status
):
    make_partnership(organisation, shelter.organisation, status=status)
    _, location = search_location(client)
    assert location["address_1"] is None
    assert detail_location(client, shelter)["latitude"] is None


def test_owner_sees_its_own_address(api_client_for, shelter):
    owner = api_client_for(shelter.organisation)
    _, location = search_location(owner)
    assert location["address_1"] == "Rua Secreta 7"


def test_partner_of_someone_else_sees_nothing(
    client, organisation, shelter, make_organisation, make_partnership
):
    make_partnership(organisation, make_organisation("Someone else"))
    _, location = search_location(client)
    assert location["address_1"] is None


def test_hsds_export_never_carries_it_even_to_partners(
    client, organisation, shelter, make_partnership
):
    make_partnership(shelter.organisation, organisation)
    response = client.get(f"/api/v1/hsds/services/{shelter.pk}")
    assert response.status_code == 200
    assert response.json()["service_at_locations"] == []
    assert "Rua Secreta" not in response.content.decode()
