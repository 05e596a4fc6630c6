"""The search reads partners_searchentry, a copy the database's triggers keep: every write path
(API, bulk SQL, admin-style saves, queryset updates, deletes) must show in the next search."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from partners.models import Capacity, Location, Organisation, SearchEntry, Service
from tests.partners.conftest import LISBON, offset

pytestmark = pytest.mark.django_db

PORTO = (41.1579, -8.6291)
NEAR_LISBON = {"near": f"{LISBON[0]},{LISBON[1]}", "radius_km": 5}
NEAR_PORTO = {"near": f"{PORTO[0]},{PORTO[1]}", "radius_km": 5}


@pytest.fixture
def searcher(api_client_for, make_organisation):
    """Searches as another organisation, so suspending the owner leaves its token working."""
    return api_client_for(make_organisation("Searcher", kind="other"))


@pytest.fixture
def found(searcher):
    def run(**params) -> list[str]:
        response = searcher.get("/api/v1/services/", params)
        assert response.status_code == 200, response.content
        return [row["name"] for row in response.json()["results"]]

    return run


def capacity_url(service) -> str:
    return f"/api/v1/services/{service.pk}/capacity"


def entries_match_sources() -> None:
    """One entry per service without a location and one per location, no more."""
    expected = Service.objects.count() + Location.objects.count()
    assert SearchEntry.objects.count() == expected
    assert SearchEntry.objects.filter(location_id__isnull=True).count() == Service.objects.count()


def test_capacity_put_shows_in_search(client, make_service, organisation, found):
    service = make_service(organisation, name="Clinic")
    assert found(accepting="waitlist") == []
    assert found(has_capacity="true") == []
    etag = client.get(capacity_url(service))["ETag"]
    response = client.put(
        capacity_url(service),
        {
            "available": 3,
            "maximum": 5,
            "unit": "places",
            "accepting_referrals": "waitlist",
            "valid_until": (timezone.now() + timedelta(days=1)).isoformat(),
        },
        format="json",
        HTTP_IF_MATCH=etag,
    )
    assert response.status_code == 200, response.content
    assert found(accepting="waitlist", **NEAR_LISBON) == ["Clinic"]
    assert found(accepting="open") == []
    assert found(has_capacity="true", fresh="true") == ["Clinic"]
    assert found(fresh="false") == []
    entries_match_sources()


def test_capacity_bulk_shows_in_search(client, make_service, organisation, found):
    services = [make_service(organisation, name=f"Clinic {i}") for i in range(3)]
    response = client.post(
        "/api/v1/capacity/bulk",
        {
            "items": [
                {
                    "service_id": str(s.pk),
                    "available": 0,
                    "unit": "beds",
                    "accepting_referrals": "closed",
                }
                for s in services[:2]
            ]
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert found(accepting="closed") == ["Clinic 0", "Clinic 1"]
    assert found(accepting="open", **NEAR_LISBON) == ["Clinic 2"]
    assert found(has_capacity="false") == ["Clinic 0", "Clinic 1", "Clinic 2"]
    entries_match_sources()


def test_stale_capacity_by_queryset_update_shows_in_search(make_service, organisation, found):
    make_service(organisation, name="Clinic", capacity={"available": 2})
    assert found(fresh="true") == ["Clinic"]
    Capacity.objects.update(valid_until=timezone.now() - timedelta(minutes=1))
    assert found(fresh="true") == []
    assert found(fresh="false", **NEAR_LISBON) == ["Clinic"]
    Capacity.objects.all().delete()
    assert found(has_capacity="false") == ["Clinic"]
    assert found(fresh="false") == []
    entries_match_sources()


def test_service_update_shows_in_search(client, make_service, organisation, found):
    service = make_service(organisation, name="Clinic", languages=["es"], cost="fee")
    assert found(language="pt") == []
    response = client.patch(
        f"/api/v1/services/{service.pk}",
        {"name": "Renamed", "languages": ["pt-BR"], "cost": "free", "walk_in": True},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert found(language="pt", **NEAR_LISBON) == ["Renamed"]
    assert found(language="pt-br", cost="free", walk_in="true") == ["Renamed"]
    assert found(language="es") == []
    assert found(cost="fee") == []
    assert found(q="Renamed") == ["Renamed"]
    entries_match_sources()


def test_taxonomy_change_shows_in_search(client, make_service, organisation, found):
    service = make_service(organisation, name="Clinic", taxonomy=["sti-testing"])
    make_service(organisation, name="Helpline", taxonomy=["housing"], locations=[])
    response = client.patch(
        f"/api/v1/services/{service.pk}", {"taxonomy": ["food", "housing"]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert found(taxonomy="sti-testing") == []
    assert found(taxonomy="housing", **NEAR_LISBON) == ["Clinic"]
    assert found(taxonomy="housing") == ["Clinic", "Helpline"]
    entries_match_sources()


def test_deactivation_shows_in_search(client, make_service, organisation, found):
    service = make_service(organisation, name="Clinic")
    assert client.post(f"/api/v1/services/{service.pk}/deactivate").status_code == 200
    assert found() == []
    assert found(**NEAR_LISBON) == []
    Service.objects.filter(pk=service.pk).update(status="active")
    assert found(**NEAR_LISBON) == ["Clinic"]


def test_location_change_shows_in_search(client, make_service, organisation, found):
    service = make_service(organisation, name="Clinic")
    assert found(**NEAR_LISBON) == ["Clinic"]
    response = client.patch(
        f"/api/v1/services/{service.pk}",
        {
            "locations": [
                {"name": "Porto", "latitude": PORTO[0], "longitude": PORTO[1]},
                {"name": "Porto too", "latitude": PORTO[0], "longitude": PORTO[1] + 0.01},
            ]
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert found(**NEAR_LISBON) == []
    assert found(**NEAR_PORTO) == ["Clinic"]
    assert found() == ["Clinic"]
    entries_match_sources()
    # A location moved by a plain save (the admin's path) moves in the search too.
    location = Location.objects.get(name="Porto too")
    location.latitude, location.longitude = offset(km_north=1)
    location.confidential = True
    location.save()
    results = client.get("/api/v1/services/", NEAR_LISBON).json()["results"]
    assert [r["name"] for r in results] == ["Clinic"]
    assert results[0]["distance_km"] == pytest.approx(1, abs=0.01)
    Location.objects.all().delete()
    assert found(**NEAR_PORTO) == []
    assert found() == ["Clinic"]
    entries_match_sources()


def test_organisation_suspension_and_kind_show_in_search(make_service, make_organisation, found):
    owner = make_organisation("Owner", kind="clinic")
    make_service(owner, name="Clinic")
    assert found(organisation_kind="clinic") == ["Clinic"]
    # The admin's actions save with update_fields.
    owner.suspended = True
    owner.save(update_fields=["suspended", "updated"])
    assert found() == []
    assert found(**NEAR_LISBON) == []
    Organisation.objects.filter(pk=owner.pk).update(suspended=False, kind="shelter")
    assert found(organisation_kind="clinic") == []
    assert found(organisation_kind="shelter", **NEAR_LISBON) == ["Clinic"]
    entries_match_sources()


@pytest.mark.parametrize(
    ("language", "matches"),
    [
        ("zh", True),
        ("zh-hant", True),
        ("zh-Hant-TW", True),
        ("zh-TW", False),
        ("zh-Hans", False),
        ("en", False),
    ],
)
def test_language_keys_match_a_tag_and_its_prefixes(make_service, found, language, matches):
    make_service(name="Clinic", languages=["zh-Hant-TW"])
    assert found(language=language) == (["Clinic"] if matches else [])


def test_language_keys():
    with connection.cursor() as cursor:
        cursor.execute("SELECT partners_language_keys(%s::varchar[])", [["pt-BR", "PT", "es"]])
        assert sorted(cursor.fetchone()[0]) == ["es", "pt", "pt-br"]
        cursor.execute("SELECT partners_language_keys('{}'::varchar[])")
        assert cursor.fetchone()[0] == []
