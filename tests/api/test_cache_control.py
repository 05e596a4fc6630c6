"""No answer may be kept by a cache unless it is directory data (issue 11): notes echoed back,
webhook secrets, claim codes in referral lists, and errors that echo input are all
`Cache-Control: no-store`. Only a success of a view that declares `directory_data = True` is
`private` (the caller's own cache may keep it, a shared one never).

Driven by the URL configuration: every route and every method it serves, called by a partner
with real objects, with unknown ids and without a token, so a new route is covered the day it
is added."""

from django.test import Client
from django.urls import resolve

from api.audit.middleware import view_class_of
from partners.models import Partnership, PartnershipStatus
from tests.api.helpers import basic_auth
from tests.api.routes import walk
from tests.api.test_tenancy_matrix import BODIES, PUBLIC_IDS, TENANT, World, unknown_kwargs
from tests.referrals.conftest import ALL_CATEGORIES, referral_payload

ROUTES = [route for route in walk() if not route.name.startswith("admin:")]


def create_body(world: World, name: str):
    """Bodies that succeed for the list routes whose answers carry what must not be cached."""
    if name == "referrals:list":
        Partnership.objects.create(
            proposer=world.owner_org,
            partner=world.receiver_org,
            status=PartnershipStatus.ACTIVE,
            data_categories=ALL_CATEGORIES,
            purposes=["Referrals"],
        )
        return referral_payload(world.receiver_org, world.service())
    if name == "partnership-list":
        return {
            "partner_id": str(world.receiver_org.pk),
            "data_categories": ["contact"],
            "purposes": ["Referrals"],
        }
    if name == "webhook-endpoint-list":
        return {"url": "http://127.0.0.1:9/hooks", "event_types": ["*"]}
    return BODIES.get(name, {})


def real_kwargs(world: World, route) -> dict:
    if not route.parameters:
        return {}
    if route.name in TENANT:
        return getattr(world, TENANT[route.name][0])()
    return PUBLIC_IDS.get(route.name, lambda w: {"pk": str(w.service().pk)})(world)


def call(client, method: str, path: str, body):
    if path.startswith("/oauth/"):
        # The OAuth endpoints take the client's id and secret in a form instead of a token.
        application = getattr(client, "application", None)
        credentials = (
            {"HTTP_AUTHORIZATION": basic_auth(application.client_id, application.plain_secret)}
            if application
            else {}
        )
        form = {"grant_type": "client_credentials", "token": "made-up"}
        # A plain client: the API client would send its bearer token over the Basic header.
        return getattr(Client(), method)(path, form, **credentials)
    if method == "get":
        return client.get(path)
    return getattr(client, method)(path, body, format="json", HTTP_IF_MATCH='"1"')


def expected(path: str, status: int) -> str:
    directory = getattr(view_class_of(resolve(path)), "directory_data", False)
    return "private" if directory and status < 400 else "no-store"


def test_every_answer_is_no_store_unless_directory_data(
    make_organisation, api_client_for, anonymous
):
    seen = {}
    wrong = []
    for route in ROUTES:
        for method in sorted(route.methods or {"get"}):
            # Organisations of their own per call: the objects one call makes or changes
            # (an open partnership, a revoked consent) must not turn the next into a 409.
            world = World(make_organisation, api_client_for)
            body = create_body(world, route.name)
            paths = [route.template.format(**real_kwargs(world, route))]
            if route.parameters:
                paths.append(route.template.format(**unknown_kwargs(route)))
            for client in (world.owner, anonymous):
                for path in paths:
                    response = call(client, method, path, body)
                    seen.setdefault((route.name, method), set()).add(response.status_code)
                    want = expected(path, response.status_code)
                    got = response.get("Cache-Control")
                    if got != want:
                        wrong.append((method.upper(), path, response.status_code, got, want))
    assert not wrong, "\n".join(map(str, wrong))
    # The answers the issue named were really produced (so their header was really checked),
    # and so were errors and directory successes.
    for name, method, status in (
        ("referrals:list", "get", 200),
        ("referrals:list", "post", 201),
        ("referrals:notes", "post", 201),
        ("webhook-endpoint-list", "post", 201),
        ("webhook-endpoint-rotate-secret", "post", 200),
        ("organisation-list", "get", 200),
        ("hsds-service-detail", "get", 200),
        ("referrals:claim", "get", 404),
        ("me", "get", 401),
        ("oauth:token", "post", 200),
        ("oauth:introspect", "post", 401),
    ):
        assert status in seen[(name, method)], (name, method, seen[(name, method)])


def test_directory_data_is_declared_on_views_not_paths():
    """The views that may be cached say so themselves; everything else never is."""
    directory = sorted(
        route.name
        for route in ROUTES
        if getattr(view_class_of(resolve(route.template.format(**unknown_kwargs(route)))),
                   "directory_data", False)
    )  # fmt: skip
    assert directory == [
        "fhir:healthcare-service",
        "fhir:healthcare-service-search",
        "fhir:organization",
        "fhir:organization-search",
        "hsds-organization-detail",
        "hsds-organization-list",
        "hsds-root",
        "hsds-service-at-location-detail",
        "hsds-service-at-location-list",
        "hsds-service-detail",
        "hsds-service-list",
        "hsds-taxonomy-detail",
        "hsds-taxonomy-list",
        "hsds-taxonomy-term-detail",
        "hsds-taxonomy-term-list",
        "organisation-detail",
        "organisation-list",
        "service-capacity",
        "service-capacity-history",
        "taxonomy-term-list",
    ]
