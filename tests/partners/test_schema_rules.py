"""What Schemathesis found refused with a 400 although the schema allowed it (issue 12): the
schema now states each rule the server checks (text of spaces only, an empty upload), and what
no schema can state (a website no visitor can open, a latitude past 90) is a 422."""

import re

import pytest
import yaml
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from partners.models import Organisation, Partnership
from tests.api.helpers import assert_problem
from tests.partners.imports import upload

pytestmark = pytest.mark.django_db

DOCUMENT = yaml.safe_load((settings.BASE_DIR / "openapi" / "openapi.yaml").read_text())
SCHEMAS = DOCUMENT["components"]["schemas"]
BLANKS = [" ", "   ", "\u00a0", "\t\n", "\u001d"]


def query_parameter(path: str, name: str) -> dict:
    operation = DOCUMENT["paths"][path]["get"]
    return next(p["schema"] for p in operation["parameters"] if p["name"] == name)


def allowed(schema: dict, value: str) -> bool:
    """Whether the document's schema for a string lets `value` through."""
    return len(value) >= schema.get("minLength", 0) and bool(re.search(schema["pattern"], value))


def pointers(response, status=400) -> list[str]:
    body = assert_problem(response, status)
    assert body["type"] == (
        "/problems/validation-error" if status == 400 else "/problems/unprocessable"
    )
    return [e["pointer"] for e in body["errors"]]


@pytest.mark.parametrize("blank", BLANKS)
def test_text_of_spaces_only_is_outside_the_schema_and_a_400(client, blank):
    name = SCHEMAS["ServiceWriteRequest"]["properties"]["name"]
    assert not allowed(name, blank) and allowed(name, " Clinic ")
    response = client.post("/api/v1/services", {"name": blank, "taxonomy": ["x"]}, format="json")
    assert "/name" in pointers(response)


@pytest.mark.parametrize("blank", BLANKS)
def test_a_blank_organisation_name_is_refused_and_kept(client, organisation, blank):
    name = SCHEMAS["PatchedOrganisationUpdateRequest"]["properties"]["name"]
    assert not allowed(name, blank)
    response = client.patch("/api/v1/organisations/me", {"name": blank}, format="json")
    assert pointers(response) == ["/name"]
    assert Organisation.objects.get(pk=organisation.pk).name == organisation.name


@pytest.mark.parametrize("blank", BLANKS)
def test_a_purpose_of_spaces_only_is_refused(client, make_organisation, blank):
    purpose = SCHEMAS["PartnershipProposeRequest"]["properties"]["purposes"]["items"]
    assert not allowed(purpose, blank)
    partner = make_organisation("Partner")
    response = client.post(
        "/api/v1/partnerships",
        {"partner_id": str(partner.pk), "data_categories": ["contact"], "purposes": [blank]},
        format="json",
    )
    assert pointers(response) == ["/purposes/0"]
    assert not Partnership.objects.exists()


@pytest.mark.parametrize("blank", ["%20", "%C2%A0"])
def test_a_blank_search_is_outside_the_schema_and_a_400(client, blank):
    assert not allowed(query_parameter("/api/v1/services", "q"), " ")
    assert pointers(client.get(f"/api/v1/services?q={blank}")) == ["/q"]


def test_a_latitude_past_90_is_a_rule_the_pattern_cannot_state(client):
    response = client.get("/api/v1/services?near=91,0&radius_km=5")
    assert pointers(response, 422) == ["/near"]


def test_an_empty_upload_is_outside_the_schema_and_a_400(client):
    assert SCHEMAS["ImportUploadRequest"]["properties"]["file"]["minLength"] == 1
    empty = SimpleUploadedFile("directory.json", b"", content_type="application/json")
    assert pointers(upload(client, empty)) == ["/file"]


@pytest.mark.parametrize(
    ("website", "status"),
    [
        # A URI Django's URL validator refuses: no visitor can open it, a rule (422).
        ("a:b", 422),
        ("http://intranet", 422),
        ("https://example.a", 422),
        # No URI at all: against the schema's `format: uri`.
        ("not a url", 400),
        ("example.org", 400),
    ],
)
def test_a_website_is_a_uri_and_one_a_visitor_can_open(client, organisation, website, status):
    response = client.patch("/api/v1/organisations/me", {"website": website}, format="json")
    assert pointers(response, status) == ["/website"]
    assert Organisation.objects.get(pk=organisation.pk).website == organisation.website


def test_a_website_that_opens_is_kept(client, organisation):
    response = client.patch(
        "/api/v1/organisations/me", {"website": "https://clinica.example.org/pt"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert Organisation.objects.get(pk=organisation.pk).website == "https://clinica.example.org/pt"


@pytest.mark.parametrize(
    ("name", "value"),
    [("accepting", "open"), ("cost", "free"), ("organisation_kind", "clinic")],
)
def test_a_choice_filter_states_and_keeps_its_bound(client, name, value):
    """A list of choices is bounded by its number of choices, in the schema and on the server,
    so no request the schema allows outgrows the server's request line."""
    bound = query_parameter("/api/v1/services", name)["maxItems"]
    within = "&".join(f"{name}={value}" for _ in range(bound))
    assert client.get(f"/api/v1/services?{within}").status_code == 200
    assert pointers(client.get(f"/api/v1/services?{within}&{name}={value}")) == [f"/{name}"]


def test_a_name_padded_past_its_max_length_is_refused(client, organisation):
    """Schemathesis: DRF trims before it measures, so a name of 200 characters after a leading
    tab was accepted although the document's `maxLength` counts the tab."""
    limit = SCHEMAS["PatchedOrganisationUpdateRequest"]["properties"]["name"]["maxLength"]
    padded = "\t" + "x" * limit
    response = client.patch("/api/v1/organisations/me", {"name": padded}, format="json")
    assert pointers(response) == ["/name"]
    organisation.refresh_from_db()
    assert organisation.name != padded.strip()
    exact = client.patch("/api/v1/organisations/me", {"name": "y" * limit}, format="json")
    assert exact.status_code == 200
