"""The search reads partners_searchentry, a copy the database's triggers keep: every write path
(API, bulk SQL, admin-style saves, queryset updates, deletes) must show in the next search."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from partners.models import SAFEGUARDS, Capacity, Location, Organisation, SearchEntry, Service
from tests.partners.conftest import LISBON, great_circle_km, offset

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
        response = searcher.get("/api/v1/services", params)
        assert response.status_code == 200, response.content
        return [row["name"] for row in response.json()["results"]]

    return run


def capacity_url(service) -> str:
    return f"/api/v1/services/{service.pk}/capacity"


def entries_match_sources() -> None:
    """One entry per service without a location, one per location and a second one per
    confidential location at its coarse point (1-2 km from it), no more; each with its
    service's owner."""
    locations = {location.pk: location for location in Location.objects.all()}
    twins = [loc for loc in locations.values() if loc.confidential and loc.latitude is not None]
    expected = Service.objects.count() + len(locations) + len(twins)
    assert SearchEntry.objects.count() == expected
    assert SearchEntry.objects.filter(location_id__isnull=True).count() == Service.objects.count()
    owners = dict(Service.objects.values_list("id", "organisation_id"))
    for entry in SearchEntry.objects.all():
        assert entry.organisation_id == owners[entry.service_id]
        location = locations.get(entry.location_id)
        if location is None:
            point = (None, None)
        elif entry.coarse:
            point = (location.coarse_latitude, location.coarse_longitude)
        else:
            point = (location.latitude, location.longitude)
        assert (entry.latitude, entry.longitude) == point
        assert entry.confidential == bool(location and location.confidential)
    for location in locations.values():
        coarse_point_is_sound(location)


def coarse_point_is_sound(location: Location) -> tuple | None:
    coarse = (location.coarse_latitude, location.coarse_longitude)
    if location.latitude is None or location.longitude is None:
        assert coarse == (None, None)
        return None
    assert 1 - 1e-9 <= great_circle_km((location.latitude, location.longitude), coarse) <= 2 + 1e-9
    return coarse


def coarse_point(location_id) -> tuple | None:
    return coarse_point_is_sound(Location.objects.get(pk=location_id))


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
    results = client.get("/api/v1/services", NEAR_LISBON).json()["results"]
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


def test_coarse_point_is_drawn_when_coordinates_are_set_and_only_then(
    client, organisation, make_service
):
    """The database draws it on every write path, keeps it whatever a write that leaves the
    coordinates alone sends, and draws anew when they change."""
    site = {"name": "Safe house", "latitude": LISBON[0], "longitude": LISBON[1]}
    response = client.post(
        "/api/v1/services",
        {"name": "Beds", "taxonomy": ["emergency-shelter"], "locations": [site]},
        format="json",
    )
    assert response.status_code == 201, response.content
    service = Service.objects.get(pk=response.json()["id"])
    location_id = response.json()["locations"][0]["id"]
    first = coarse_point(location_id)
    entries_match_sources()

    # The API: a service edit, and the same place sent again (other fields replaced).
    url = f"/api/v1/services/{service.pk}"
    assert client.patch(url, {"name": "Beds too"}, format="json").status_code == 200
    again = {**site, "name": "Renamed", "confidential": True, "schedules": []}
    body = client.patch(url, {"locations": [again]}, format="json").json()
    assert body["locations"][0]["id"] == location_id
    assert body["locations"][0]["name"] == "Renamed"
    assert coarse_point(location_id) == first
    # The admin's path: a save that writes every column, the coarse ones stale or forged.
    location = Location.objects.get(pk=location_id)
    location.coarse_latitude, location.coarse_longitude = location.latitude, location.longitude
    location.front_door_contact = "Call first"
    location.save()
    Location.objects.filter(pk=location_id).update(coarse_latitude=None, name="Plain update")
    assert coarse_point(location_id) == first
    entries_match_sources()

    # The coordinates change: through the API, a queryset update, a plain save.
    moved = {**site, "latitude": LISBON[0] + 0.01}
    body = client.patch(url, {"locations": [moved]}, format="json").json()
    location_id = body["locations"][0]["id"]
    second = coarse_point(location_id)
    assert second != first
    Location.objects.filter(pk=location_id).update(longitude=LISBON[1] + 0.01)
    third = coarse_point(location_id)
    assert third not in (first, second)
    location = Location.objects.get(pk=location_id)
    location.latitude, location.longitude = offset(km_north=5)
    location.save()
    fourth = coarse_point(location_id)
    assert fourth not in (first, second, third)
    entries_match_sources()
    # No coordinates, no point.
    Location.objects.filter(pk=location_id).update(latitude=None, longitude=None)
    assert coarse_point(location_id) is None
    entries_match_sources()

    # bulk_create and raw SQL: the database draws whatever was sent.
    Location.objects.bulk_create(
        [Location(service=service, latitude=PORTO[0], longitude=PORTO[1], coarse_latitude=0)]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO partners_location (id, service_id, name, address_1, city, region, "
            "postal_code, country, latitude, longitude, time_zone, confidential, "
            "front_door_contact, coarse_latitude, coarse_longitude) VALUES (gen_random_uuid(), "
            "%s, 'Raw', '', '', '', '', 'PT', %s, %s, 'UTC', true, '', %s, %s)",
            [service.pk, *PORTO, *PORTO],
        )
    for location in Location.objects.filter(latitude=PORTO[0]):
        coarse_point_is_sound(location)
    entries_match_sources()
    make_service(organisation, name="Clinic")
    entries_match_sources()


def test_coarse_points_go_every_way(make_service):
    """A random bearing and distance per location, even for locations at one point."""
    site = {"name": "Site", "latitude": LISBON[0], "longitude": LISBON[1]}
    make_service(locations=[site] * 48)
    points = [coarse_point_is_sound(location) for location in Location.objects.all()]
    assert len(set(points)) == 48
    quadrants = {(lat > LISBON[0], lon > LISBON[1]) for lat, lon in points}
    assert len(quadrants) == 4
    distances = [great_circle_km(LISBON, point) for point in points]
    assert min(distances) < 1.5 < max(distances)


def test_every_entry_column_is_filled_by_the_triggers(make_organisation, make_service):
    """Each column of SearchEntry holds its source's value on every row a service has: a column
    the triggers' function leaves out would be NULL, and the search would quietly miss it."""
    owner = make_organisation("Owner", kind="harm_reduction")
    valid_until = timezone.now() + timedelta(days=1)
    site = {"name": "Site", "latitude": LISBON[0], "longitude": LISBON[1]}
    service = make_service(
        owner,
        name="Everything",
        taxonomy=["food", "housing"],
        languages=["pt-BR"],
        cost="fee",
        capacity={"available": 3, "accepting_referrals": "limited", "valid_until": valid_until},
        locations=[site, {**site, "name": "Safe", "confidential": True}],
        **dict.fromkeys(SAFEGUARDS, True),
    )
    Organisation.objects.filter(pk=owner.pk).update(suspended=True)
    Service.objects.filter(pk=service.pk).update(status="inactive")
    locations = {location.pk: location for location in Location.objects.all()}
    rows = list(SearchEntry.objects.filter(service_id=service.pk).values())
    assert len(rows) == 1 + len(locations) + 1
    for row in rows:
        location = locations.get(row["location_id"])
        coarse = row["coarse"]
        if location is None:
            point = (None, None)
        elif coarse:
            point = (location.coarse_latitude, location.coarse_longitude)
        else:
            point = (location.latitude, location.longitude)
        expected = {
            "id": row["id"],
            "service_id": service.pk,
            "organisation_id": owner.pk,
            "location_id": location and location.pk,
            "name": "Everything",
            "status": "inactive",
            "organisation_suspended": True,
            "organisation_kind": "harm_reduction",
            "taxonomy_codes": ["food", "housing"],
            "language_keys": ["pt", "pt-br"],
            "cost": "fee",
            **dict.fromkeys(SAFEGUARDS, True),
            "accepting_referrals": "limited",
            "available": 3,
            "valid_until": valid_until,
            "latitude": point[0],
            "longitude": point[1],
            "confidential": bool(location and location.confidential),
            "coarse": bool(location and location.confidential and coarse),
        }
        assert {**row, "language_keys": sorted(row["language_keys"])} == expected
    assert {row["coarse"] for row in rows} == {True, False}
    assert {row["confidential"] for row in rows} == {True, False}
