"""Directory factories: services with locations, schedules and capacity, and partnerships."""

import pytest

from partners.models import Partnership, PartnershipStatus
from partners.services import service_create

LISBON = (38.7223, -9.1393)


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
            locations = [
                {
                    "name": "Main",
                    "address_1": "Rua da Palma 1",
                    "city": "Lisboa",
                    "region": "Lisboa",
                    "country": "PT",
                    "latitude": LISBON[0],
                    "longitude": LISBON[1],
                    "time_zone": "Europe/Lisbon",
                }
            ]
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
