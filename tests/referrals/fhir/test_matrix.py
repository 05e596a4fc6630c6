"""The attacker matrix of the FHIR routes, built from the URL configuration like the REST one
(tests/api/test_tenancy_matrix.py), so a new FHIR route cannot be missed.

- Tenancy: every route that takes an id, with every method it serves, called by an outsider
  organisation (valid token, every scope) with a real object's id and with an unknown id: both
  are the same 404 OperationOutcome, and the refusal is in the audit trail. The parties can
  still read the object, so the 404 means "not yours".
- Scopes: every route and method, called with every scope but the ones it needs: 403; without
  a token: 401 (only the CapabilityStatement is public).
- Searches: an outsider's shows nothing of the parties'.
"""

import json
import uuid

import pytest

from api.audit.models import AuditEntry
from partners.models import Partnership, PartnershipStatus
from partners.services import service_create
from referrals.fhir.structure import model
from tests.api import test_tenancy_matrix as tenancy
from tests.api.routes import walk
from tests.conftest import ALL_SCOPES, issue_token
from tests.referrals.conftest import ALL_CATEGORIES, ensure_taxonomy
from tests.referrals.fhir.conftest import transaction_bundle
from tests.referrals.fhir.test_subscriptions import subscription_body

FHIR = "/fhir/r4"
ROUTES = [
    route for route in walk() if route.template == FHIR or route.template.startswith(FHIR + "/")
]
WITH_IDS = [route for route in ROUTES if route.parameters]
BOTH = {"owner": 200, "receiver": 200}
# URL name -> (builder, what each party gets on GET).
TENANT = {
    "fhir:task": ("referral", BOTH),
    "fhir:service-request": ("referral", BOTH),
    "fhir:consent": ("referral", BOTH),
    "fhir:subscription": ("subscription", {"owner": 200, "receiver": 404}),
}
# The public directory: every partner reads it.
PUBLIC = {"fhir:healthcare-service": {"get": 200}, "fhir:organization": {"get": 200}}
PATCH = "application/json-patch+json"


class World(tenancy.World):
    """The REST matrix's parties, and objects made through the FHIR routes."""

    def __init__(self, make_organisation, api_client_for):
        ensure_taxonomy()
        super().__init__(make_organisation, api_client_for)

    def referral(self) -> dict:
        Partnership.objects.get_or_create(
            proposer=self.owner_org,
            partner=self.receiver_org,
            defaults={"status": PartnershipStatus.ACTIVE, "data_categories": ALL_CATEGORIES},
        )
        service = service_create(
            organisation=self.receiver_org, name="Testing", taxonomy=["sti-testing"]
        )
        body = transaction_bundle(self.owner_org, self.receiver_org, service)
        response = self.owner.generic("POST", FHIR, json.dumps(body), "application/fhir+json")
        assert response.status_code == 200, response.content
        task = response.json()["entry"][1]["resource"]
        self.private_ids |= {task["id"], task["identifier"][0]["value"]}
        return {"pk": task["id"]}

    def subscription(self) -> dict:
        body = subscription_body("http://127.0.0.1:9/hook")
        response = self.owner.generic(
            "POST", FHIR + "/Subscription", json.dumps(body), "application/fhir+json"
        )
        assert response.status_code == 201, response.content
        self.private_ids.add(response.json()["id"])
        return {"pk": response.json()["id"]}

    def public(self, name: str) -> dict:
        if name == "fhir:organization":
            return {"pk": str(self.receiver_org.pk)}
        return {
            "pk": str(service_create(organisation=self.receiver_org, name="Open", taxonomy=[]).pk)
        }


def call(client, method: str, path: str):
    """Bodies valid in shape, and a stale If-Match: what is tested is the look-up, which must
    come before anything that could tell a real id from an unknown one."""
    if method == "get":
        return client.get(path)
    if method == "delete":
        return client.delete(path)
    if method == "patch":
        body = [{"op": "test", "path": "/status", "value": "active"}]
        return client.generic("PATCH", path, json.dumps(body), PATCH, HTTP_IF_MATCH='W/"x"')
    resource_type = path.split("/")[3] if path.count("/") > 3 else "Bundle"
    body = {"resourceType": resource_type, "id": path.rpartition("/")[2], "status": "inactive"}
    return client.generic(
        method.upper(), path, json.dumps(body), "application/fhir+json", HTTP_IF_MATCH='W/"x"'
    )


@pytest.fixture
def world(make_organisation, api_client_for):
    return World(make_organisation, api_client_for)


def test_every_fhir_route_with_an_id_is_covered():
    uncovered = [
        route.name for route in WITH_IDS if route.name not in TENANT and route.name not in PUBLIC
    ]
    assert not uncovered, f"FHIR routes with an id in neither TENANT nor PUBLIC: {uncovered}"
    assert set(TENANT) | set(PUBLIC) == {route.name for route in WITH_IDS}


TENANT_CASES = [
    pytest.param(route, method, id=f"{method.upper()} {route.template}")
    for route in WITH_IDS
    if route.name in TENANT
    for method in sorted(route.methods)
]


@pytest.mark.parametrize(("route", "method"), TENANT_CASES)
def test_an_outsider_gets_the_unknown_id_answer(world, route, method):
    builder, readers = TENANT[route.name]
    kwargs = getattr(world, builder)()
    mine = call(world.outsider, method, route.template.format(**kwargs))
    unknown = call(world.outsider, method, route.template.format(pk=uuid.uuid4()))
    assert unknown.status_code == 404, unknown.content
    assert mine.status_code == 404, (route.template, method, mine.content)
    assert mine["Content-Type"] == unknown["Content-Type"] == "application/fhir+json"
    assert mine.json() == unknown.json()
    assert mine.json()["resourceType"] == "OperationOutcome"
    model("OperationOutcome").model_validate(mine.json())
    denied = AuditEntry.objects.filter(object_id=kwargs["pk"], action__startswith="denied")
    assert denied.filter(actor_organisation=world.outsider_org.pk).exists()
    if method == "get":
        for party, expected in readers.items():
            response = getattr(world, party).get(route.template.format(**kwargs))
            assert response.status_code == expected, (party, response.content)
            if expected == 404:
                assert response.json() == unknown.json()


@pytest.mark.parametrize(
    "route", [r for r in WITH_IDS if r.name in PUBLIC], ids=lambda r: r.template
)
def test_the_directory_answers_every_partner(world, route):
    response = world.outsider.get(route.template.format(**world.public(route.name)))
    assert response.status_code == PUBLIC[route.name]["get"], response.content


SCOPE_CASES = [
    pytest.param(route, method, id=f"{method.upper()} {route.template}")
    for route in ROUTES
    for method in sorted(route.methods)
]


@pytest.mark.parametrize(("route", "method"), SCOPE_CASES)
def test_every_operation_needs_its_scopes_and_a_token(
    world, anonymous, make_application, route, method
):
    view = route_view(route)
    needed = (getattr(view, "required_scopes", None) or {}).get(method.upper())
    path = route.template.format(pk=uuid.uuid4())
    if needed is None:
        assert route.name == "fhir:metadata", f"{route.name} declares no scopes for {method}"
        assert call(anonymous, method, path).status_code == 200
        return
    fewer = make_application(world.outsider_org, [s for s in ALL_SCOPES if s not in needed])
    anonymous.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(fewer)}")
    response = call(anonymous, method, path)
    assert response.status_code == 403, (route.template, method, response.content)
    assert response.json()["resourceType"] == "OperationOutcome"
    anonymous.credentials()
    assert call(anonymous, method, path).status_code == 401


def route_view(route):
    from django.urls import resolve

    return resolve(route.template.format(pk=uuid.uuid4())).func.view_class


def test_no_search_shows_an_outsider_anything_private(world):
    world.referral()
    world.subscription()
    assert world.private_ids
    searches = [route for route in ROUTES if not route.parameters and "get" in route.methods]
    assert len(searches) >= 6
    for route in searches:
        response = world.outsider.get(route.template)
        assert response.status_code == 200, (route.template, response.content)
        text = json.dumps(response.json())
        leaked = [value for value in world.private_ids if value in text]
        assert not leaked, (route.template, leaked)
