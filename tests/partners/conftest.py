"""Directory factories: services with locations, schedules and capacity, and partnerships."""

import importlib
from urllib.parse import parse_qs, urlsplit

import pytest
from django.apps import apps

from partners.models import Partnership, PartnershipStatus
from partners.services import service_create

LISBON = (38.7223, -9.1393)


def location_at(point: tuple[float, float], **extra) -> dict:
    """A location to create at `point` (latitude, longitude), in Lisbon's region and time zone."""
    return {
        "name": "Main",
        "region": "Lisboa",
        "country": "PT",
        "latitude": point[0],
        "longitude": point[1],
        "time_zone": "Europe/Lisbon",
        **extra,
    }


@pytest.fixture
def make_service(make_organisation):
    def make(
        organisation=None,
        *,
        name="Walk-in STI testing",
        taxonomy=("sti-testing",),
        locations=None,
        capacity=None,
        **fields,
    ):
        organisation = organisation or make_organisation()
        if locations is None:
            locations = [location_at(LISBON, address_1="Rua da Palma 1", city="Lisboa")]
        return service_create(
            organisation=organisation,
            name=name,
            taxonomy=list(taxonomy),
            locations=locations,
            capacity=capacity,
            **fields,
        )

    return make


@pytest.fixture
def make_partnership(db):
    def make(a, b, status=PartnershipStatus.ACTIVE, **fields):
        return Partnership.objects.create(
            proposer=a,
            partner=b,
            status=status,
            data_categories=fields.pop("data_categories", ["contact"]),
            purposes=fields.pop("purposes", ["Referrals"]),
            **fields,
        )

    return make


def offset(km_north: float = 0.0, km_east: float = 0.0, origin=LISBON) -> tuple[float, float]:
    """A point roughly `km_north` and `km_east` of origin (fine at these distances)."""
    import math

    lat = origin[0] + km_north / 111.045
    lon = origin[1] + km_east / (111.045 * math.cos(math.radians(origin[0])))
    return lat, lon


def great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance on the same sphere as the search (partners_distance_km)."""
    import math

    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))


def cursor_of(page: dict) -> str | None:
    """The cursor in a search page's `next` link (None on the last page)."""
    if page["next"] is None:
        return None
    return parse_qs(urlsplit(page["next"]).query)["cursor"][0]


@pytest.fixture
def taxonomy(db):
    """The seeded taxonomy, again: a transactional test's flush empties every table, the
    migration's seed included, for the tests that run after it."""
    importlib.import_module("partners.migrations.0003_seed_taxonomy").seed(apps, None)
