"""The search builds each hit as JSON in SQL (partners.search); it must say exactly what the
documented serializer says of the same rows, masking included, for the owner, an active partner
and a stranger alike."""

from datetime import timedelta

import pytest
from django.utils import timezone

from partners.api.serializers import ServiceSearchResultSerializer
from partners.models import Capacity, Service, TaxonomyTerm, capacity_stale
from partners.selectors import may_see_confidential
from tests.partners.conftest import LISBON, offset

pytestmark = pytest.mark.django_db

NEAR = {"near": f"{LISBON[0]},{LISBON[1]}", "radius_km": 20}


def site(km_north: float, **extra) -> dict:
    lat, lon = offset(km_north=km_north)
    return {
        "name": f"Site {km_north}",
        "address_1": "Rua da Palma 1",
        "city": "Lisboa",
        "postal_code": "1100-001",
        "region": "Lisboa",
        "country": "PT",
        "latitude": lat,
        "longitude": lon,
        "time_zone": "Europe/Lisbon",
        **extra,
    }


@pytest.fixture
def services(organisation, make_organisation, make_service, make_partnership):
    """A confidential location of the caller's own, of an active partner and of a stranger;
    a public location with a front door contact; no capacity, a stale one, a current one with
    microseconds; a name that needs escaping; a service without locations."""
    partner = make_organisation("Partner", kind="shelter")
    make_partnership(partner, organisation)
    stranger = make_organisation('Casa «Lua» "Nova" \\ 🌙', kind="shelter", verified=True)
    secret = {"confidential": True, "front_door_contact": "Call first"}
    made = [
        make_service(
            organisation,
            name="Own beds",
            taxonomy=["emergency-shelter", "food"],
            locations=[site(1, **secret)],
            capacity={"available": 2, "maximum": 4, "unit": "beds"},
        ),
        make_service(partner, name="Partner beds", locations=[site(2, **secret)]),
        make_service(
            stranger,
            name='Beds «Lua» "\\"',
            description="Line one\nline two",
            languages=["pt-BR", "en"],
            cost="sliding_scale",
            walk_in=True,
            trans_friendly=True,
            locations=[site(3, **secret), site(4, front_door_contact="Ring twice")],
            capacity={"available": 0, "accepting_referrals": "waitlist"},
        ),
        make_service(stranger, name="Helpline", locations=[]),
    ]
    past = timezone.now().replace(microsecond=0) - timedelta(days=1)
    Capacity.objects.filter(service=made[0]).update(valid_until=past)
    Capacity.objects.filter(service=made[1]).delete()
    future = timezone.now().replace(microsecond=123456) + timedelta(days=1)
    Capacity.objects.filter(service=made[2]).update(valid_until=future)
    return made


def rendered(client, results: list[dict], language: str) -> list[dict]:
    """Each hit as ServiceSearchResultSerializer renders the service from the ORM; distances,
    which only SQL measures (tests: test_search.py, test_confidential.py), taken from the hit."""
    names = {term.code: term.name_in(language) for term in TaxonomyTerm.objects.all()}
    now = timezone.now()
    expected = []
    for result in results:
        service = (
            Service.objects.select_related("organisation", "capacity")
            .prefetch_related("locations")
            .get(pk=result["id"])
        )
        service.taxonomy = [
            {"code": code, "name": names.get(code, code)} for code in service.taxonomy_codes
        ]
        service.distance_km = result["distance_km"]
        capacity = getattr(service, "capacity", None)
        if capacity is not None:
            capacity.stale = capacity_stale(capacity.valid_until, now)
        distances = {location["id"]: location["distance_km"] for location in result["locations"]}
        for location in service.locations.all():
            location.distance_km = distances.get(str(location.pk))
        revealed = may_see_confidential(
            caller=client.organisation, owner_id=service.organisation_id
        )
        expected.append(ServiceSearchResultSerializer(service, context={"revealed": revealed}).data)
    return expected


@pytest.mark.parametrize("where", [{}, NEAR], ids=["listing", "near"])
def test_search_hits_built_in_sql_match_the_serializer(client, services, where):
    response = client.post(
        "/api/v1/services/search", where, format="json", HTTP_ACCEPT_LANGUAGE="fr"
    )
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    listed = {"Own beds", "Partner beds", 'Beds «Lua» "\\"'} | (
        {"Helpline"} if not where else set()
    )
    assert {result["name"] for result in results} == listed
    assert results == rendered(client, results, "fr")
    # The masking the comparison covers: hidden from the stranger's caller, shown to the rest.
    by_name = {result["name"]: result for result in results}
    assert by_name["Own beds"]["locations"][0]["address_1"] == "Rua da Palma 1"
    assert by_name["Partner beds"]["locations"][0]["latitude"] is not None
    hidden, public = by_name['Beds «Lua» "\\"']["locations"]
    assert hidden["address_1"] is None and hidden["front_door_contact"] == "Call first"
    assert public["address_1"] == "Rua da Palma 1" and public["front_door_contact"] is None
    assert by_name["Own beds"]["capacity"]["stale"] is True
