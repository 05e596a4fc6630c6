"""Confidential locations: street address and coordinates only for the owner and its active
partners; everyone else gets region, front-door contact and the distance of the location's
coarse point, rounded to the km (the attack itself: test_confidential_attack.py)."""

import math

import pytest

from partners.models import Location
from partners.search import EARTH_RADIUS_KM
from tests.partners.conftest import LISBON, great_circle_km, offset

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
    # Measured from the coarse point, which the database drew 1-2 km from the true one.
    coarse = Location.objects.values_list("coarse_latitude", "coarse_longitude").get()
    assert 1 <= great_circle_km(coarse, offset(km_north=3.4)) <= 2
    assert location["distance_km"] == round(great_circle_km(LISBON, coarse))
    assert result["distance_km"] == location["distance_km"]
    detail = detail_location(client, shelter)
    for name in HIDDEN:
        assert detail[name] is None
    assert detail["front_door_contact"] == "Call +351 210 000 001"
    assert "Rua Secreta" not in client.get(f"/api/v1/services/{shelter.pk}").content.decode()


def test_radius_and_order_use_the_coarse_point_for_a_non_partner(
    client, organisation, shelter, make_service, make_partnership
):
    location = Location.objects.get()
    exact_km = great_circle_km(LISBON, (location.latitude, location.longitude))
    hidden_km = great_circle_km(LISBON, (location.coarse_latitude, location.coarse_longitude))
    # A public service due north, exactly between the shelter's true and coarse distances.
    between_km = (hidden_km + exact_km) / 2
    north = LISBON[0] + math.degrees(between_km / EARTH_RADIUS_KM)
    make_service(name="Between", locations=[{"latitude": north, "longitude": LISBON[1]}])

    def found(radius_km) -> list[str]:
        response = client.post(
            "/api/v1/services/search",
            {"near": f"{LISBON[0]},{LISBON[1]}", "radius_km": radius_km},
            format="json",
        )
        assert response.status_code == 200
        return [result["name"] for result in response.json()["results"]]

    assert "Safe house beds" in found(hidden_km + 0.001)
    assert "Safe house beds" not in found(hidden_km - 0.001)
    coarse_first = hidden_km < exact_km
    by_coarse = ["Safe house beds", "Between"] if coarse_first else ["Between", "Safe house beds"]
    assert found(10) == by_coarse
    # A partner: the true distance decides.
    make_partnership(shelter.organisation, organisation)
    assert "Safe house beds" in found(exact_km + 0.001)
    assert "Safe house beds" not in found(exact_km - 0.001)
    assert found(10) == by_coarse[::-1]


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
