"""The demo seed gives the four demo organisations services to find and active partnerships,
and a second run adds nothing."""

import pytest

from partners.demo import DEMO_PARTNERSHIPS, DEMO_SERVICES, seed_demo
from partners.models import Capacity, Location, Partnership, Schedule, Service
from partners.selectors import active_partner_ids

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def var_dir(tmp_path, settings):
    settings.VAR_DIR = tmp_path


def counts() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (Service, Location, Schedule, Capacity, Partnership)
    }


def test_seed_is_complete_and_idempotent():
    seed_demo()
    first = counts()
    assert first["Service"] == sum(len(specs) for specs in DEMO_SERVICES.values())
    assert first["Partnership"] == len(DEMO_PARTNERSHIPS)
    assert first["Schedule"] > first["Location"] > 0
    seed_demo()
    assert counts() == first


def test_demo_organisations_partner_and_publish_capacity():
    seed_demo()
    services = Service.objects.select_related("organisation", "capacity")
    assert all(s.capacity.maximum for s in services)
    for proposer, partner, _ in DEMO_PARTNERSHIPS:
        a = services.filter(organisation__name=proposer).first().organisation
        b = services.filter(organisation__name=partner).first().organisation
        assert b.pk in active_partner_ids(a.pk)
    assert Location.objects.filter(confidential=True).count() == 1
