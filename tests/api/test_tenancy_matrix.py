"""The tenancy matrix, built from the URL configuration itself so a new route cannot be missed.

Every /api/v1/ route that takes an id, with every method its view allows, is called by an
outsider organisation (valid token, every scope) with the id of a real object and with an
unknown id: both answers are 404 with the same problem document (apart from `instance`). The
owner (and the other party, where there is one) can read the same object, so the 404 means
"not yours", not "not there". No list an outsider can read contains anything private.

A route must be either in TENANT (with a builder for a real object) or in PUBLIC (the directory,
readable by every partner, with the answer an outsider gets); otherwise the coverage test fails
naming it.
"""

import json
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from partners.hsds_terms import SAFEGUARD_TAXONOMY, safeguard_term_id
from partners.models import Location, Partnership, PartnershipStatus, Service
from partners.services import service_create
from tests.api.routes import Route, api_routes
from tests.referrals.conftest import ALL_CATEGORIES, referral_payload


class World:
    """An owner, a receiver (the other party), an outsider, and objects made through the API."""

    def __init__(self, make_organisation, api_client_for):
        self.owner_org = make_organisation("Owner collective", kind="sex_worker_led")
        self.receiver_org = make_organisation("Receiving clinic", kind="clinic")
        self.outsider_org = make_organisation("Outsider shelter", kind="shelter")
        self.owner = api_client_for(self.owner_org)
        self.receiver = api_client_for(self.receiver_org)
        self.outsider = api_client_for(self.outsider_org)
        self.private_ids: set[str] = set()

    def created(self, response, key="id") -> str:
        assert response.status_code in (200, 201, 202), response.content
        value = str(response.json()[key])
        self.private_ids.add(value)
        return value

    def service(self) -> Service:
        return service_create(
            organisation=self.receiver_org,
            name="Walk-in testing",
            taxonomy=["sti-testing"],
            capacity={"available": 3, "maximum": 9, "unit": "appointments"},
        )

    def location(self) -> Location:
        service = service_create(
            organisation=self.receiver_org,
            name="Walk-in testing",
            taxonomy=["sti-testing"],
            locations=[{"name": "Main", "city": "Lisboa"}],
        )
        return service.locations.get()

    def referral(self) -> dict:
        Partnership.objects.update_or_create(
            proposer=self.owner_org,
            partner=self.receiver_org,
            defaults={"status": PartnershipStatus.ACTIVE, "data_categories": ALL_CATEGORIES},
        )
        service = self.service()
        response = self.owner.post(
            "/api/v1/referrals", referral_payload(self.receiver_org, service), format="json"
        )
        referral = self.created(response)
        self.private_ids.add(response.json()["claim_code"])
        return {"pk": referral, "code": response.json()["claim_code"]}

    def partnership(self) -> dict:
        response = self.owner.post(
            "/api/v1/partnerships",
            {
                "partner_id": str(self.receiver_org.pk),
                "data_categories": ["contact"],
                "purposes": ["Referrals"],
            },
            format="json",
        )
        return {"pk": self.created(response)}

    def webhook_endpoint(self) -> dict:
        response = self.owner.post(
            "/api/v1/webhook-endpoints",
            {"url": "http://127.0.0.1:9/hooks", "event_types": ["*"]},
            format="json",
        )
        return {"pk": self.created(response)}

    def directory_import(self) -> dict:
        document = SimpleUploadedFile("d.json", b"[]", content_type="application/json")
        response = self.owner.post(
            "/api/v1/directory/imports", {"file": document}, format="multipart"
        )
        return {"pk": self.created(response)}

    def delivery(self) -> dict:
        endpoint = self.webhook_endpoint()["pk"]
        return {"id": self.created(self.owner.post(f"/api/v1/webhook-endpoints/{endpoint}/ping"))}


# URL name -> (builder, what each party gets on GET: the owner made it, the receiver is the other
# party). What only the other party may see answers it exactly as an unknown id does (404).
BOTH = {"owner": 200, "receiver": 200}
OWNER = {"owner": 200, "receiver": 404}
REFERRAL_ROUTES = """detail notes timeline consent-revoke consent-renew safe-contact receive accept
    decline hold resume start complete cancel"""
PARTNERSHIP_ROUTES = "detail accept decline suspend resume end"
TENANT = {
    "referrals:claim": ("referral", {"owner": 404, "receiver": 200}),
    **{f"referrals:{name}": ("referral", BOTH) for name in REFERRAL_ROUTES.split()},
    "referrals:disclosures": ("referral", OWNER),
    **{f"partnership-{name}": ("partnership", BOTH) for name in PARTNERSHIP_ROUTES.split()},
    "webhook-endpoint-detail": ("webhook_endpoint", OWNER),
    "webhook-endpoint-deliveries": ("webhook_endpoint", OWNER),
    "webhook-endpoint-ping": ("webhook_endpoint", {}),
    "webhook-endpoint-rotate-secret": ("webhook_endpoint", {}),
    "delivery-redeliver": ("delivery", {}),
    "directory-import-detail": ("directory_import", OWNER),
}

# Bodies valid in shape, so what is tested is the object lookup, not the body's validation.
BODIES = {
    "referrals:notes": {"text": "Called, no answer."},
    "referrals:decline": {"reason": "no_capacity"},
    "referrals:complete": {"outcome": "service_provided"},
    "referrals:consent-renew": {"method": "verbal", "language": "pt-BR",
                                "wording_version": "2026-10", "recorded_by": "staff-1"},
    "referrals:safe-contact": {"do_not_contact": True},
    "service-capacity": {"available": 1, "maximum": 9, "unit": "appointments",
                         "accepting_referrals": "open"},
    "service-detail": {"name": "Renamed"},
}  # fmt: skip

# The public directory: every partner may read it (issue 3); writes to another organisation's
# service are refused with 409 `wrong-party` ("not yours" is no secret for a published service,
# and 403 is only a missing scope).
PUBLIC = {
    "organisation-detail": {"get": 200},
    "service-detail": {"get": 200, "patch": 409},
    "service-deactivate": {"post": 409},
    "service-capacity": {"get": 200, "put": 409},
    "service-capacity-history": {"get": 200},
    "hsds-service-detail": {"get": 200},
    "hsds-organization-detail": {"get": 200},
    "hsds-service-at-location-detail": {"get": 200},
    "hsds-taxonomy-detail": {"get": 200},
    "hsds-taxonomy-term-detail": {"get": 200},
}

# Lists whose every view must be checked.
LIST_QUERIES = {"referrals:list": ["", "?box=inbox", "?box=outbox"]}

PUBLIC_IDS = {
    "organisation-detail": lambda world: {"pk": str(world.receiver_org.pk)},
    "hsds-organization-detail": lambda world: {"pk": str(world.receiver_org.pk)},
    "hsds-service-at-location-detail": lambda world: {"pk": str(world.location().pk)},
    "hsds-taxonomy-detail": lambda world: {"pk": SAFEGUARD_TAXONOMY.id},
    "hsds-taxonomy-term-detail": lambda world: {"pk": safeguard_term_id("walk_in")},
    # A problem type's page (api/problems.py), the same for everyone.
    "problem": lambda world: {"code": "not-found"},
}


def url(route: Route, kwargs: dict) -> str:
    return route.template.format(**kwargs)


def call(client, method: str, route: Route, kwargs: dict):
    # A stale If-Match: a view that checked preconditions before looking the object up would
    # answer 412 for a real id and so show that it exists.
    body = BODIES.get(route.name, {}) if method != "get" else None
    return getattr(client, method)(url(route, kwargs), body, format="json", HTTP_IF_MATCH='"x"')


def unknown_kwargs(route: Route) -> dict:
    return {
        name: ("ZZZZZZZZ" if name == "code" else str(uuid.uuid4())) for name in route.parameters
    }


def without_instance(response) -> dict:
    body = response.json()
    body.pop("instance", None)
    return body


ROUTES_WITH_IDS = [route for route in api_routes() if route.parameters]


def cases(table: dict) -> list:
    """Each method of each route with an id that `table` names."""
    return [
        pytest.param(route, method, id=f"{method.upper()} {route.template}")
        for route in ROUTES_WITH_IDS
        if route.name in table
        for method in sorted(route.methods)
    ]


@pytest.fixture
def world(make_organisation, api_client_for):
    return World(make_organisation, api_client_for)


def test_every_route_with_an_id_is_covered():
    uncovered = [
        f"{route.template} ({route.name})"
        for route in ROUTES_WITH_IDS
        if route.name not in TENANT and route.name not in PUBLIC
    ]
    assert not uncovered, (
        "routes that take an id but are neither in TENANT (with a builder) nor declared "
        f"PUBLIC in tests/api/test_tenancy_matrix.py: {uncovered}"
    )
    names = {route.name for route in ROUTES_WITH_IDS}
    assert not (set(TENANT) | set(PUBLIC)) - names, "entries for routes that no longer exist"


@pytest.mark.parametrize(("route", "method"), cases(TENANT))
def test_outsider_gets_the_unknown_id_answer(world, route, method):
    builder, readers = TENANT[route.name]
    kwargs = getattr(world, builder)()
    mine = call(world.outsider, method, route, kwargs)
    unknown = call(world.outsider, method, route, unknown_kwargs(route))
    assert unknown.status_code == 404, unknown.content
    assert mine.status_code == 404, (route.template, method, mine.status_code, mine.content)
    assert mine["Content-Type"] == unknown["Content-Type"] == "application/problem+json"
    assert without_instance(mine) == without_instance(unknown)
    # The object is real and still there for the parties who may see it.
    if method == "get":
        for party, expected in readers.items():
            response = getattr(world, party).get(url(route, kwargs))
            assert response.status_code == expected, (party, response.content)
            if expected == 404:
                assert without_instance(response) == without_instance(unknown)


@pytest.mark.parametrize(("route", "method"), cases(PUBLIC))
def test_public_directory_answers_outsiders_as_declared(world, route, method):
    kwargs = PUBLIC_IDS.get(route.name, lambda w: {"pk": str(w.service().pk)})(world)
    expected = PUBLIC[route.name].get(method)
    assert expected is not None, f"{method.upper()} {route.template} needs a PUBLIC entry"
    response = call(world.outsider, method, route, kwargs)
    assert response.status_code == expected, (route.template, method, response.content)
    if expected == 409:
        assert response.json()["type"] == "/problems/wrong-party"


def test_no_list_shows_an_outsider_anything_private(world):
    world.partnership()
    world.referral()
    world.delivery()
    assert world.private_ids
    # The person's own routes take no OAuth token at all (tests/referrals/test_self_service.py
    # holds every partner token out of them and every self token out of the partner routes).
    lists = [
        r
        for r in api_routes()
        if not r.parameters and "get" in r.methods and not r.name.startswith("self:")
    ]
    assert len(lists) > 3
    for route in lists:
        for query in LIST_QUERIES.get(route.name, [""]):
            response = world.outsider.get(route.template + query)
            assert response.status_code == 200, (route.template, query, response.content)
            text = json.dumps(response.json())
            leaked = [value for value in world.private_ids if value in text]
            assert not leaked, (route.template, query, leaked)
