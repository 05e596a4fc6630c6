"""Organisations, taxonomy terms and service writes: ownership, visibility, scopes, bad input,
query counts."""

import pytest

from partners.api.examples import SERVICE_CREATE
from partners.models import Capacity, CapacityHistory, Location, Organisation, Schedule, Service

pytestmark = pytest.mark.django_db

UNKNOWN = "00000000-0000-0000-0000-000000000000"

# The documented example with two taxonomy terms, a language tag to normalise and two opening
# days.
EXAMPLE = SERVICE_CREATE[0].value
SERVICE = {
    **EXAMPLE,
    "description": "Rapid tests",
    "taxonomy": ["sti-testing", "hiv-prep-pep"],
    "languages": ["pt", "th", "pt-br"],
    "locations": [
        {
            **EXAMPLE["locations"][0],
            "schedules": [
                {"weekday": 1, "opens_at": "10:00", "closes_at": "18:00"},
                {"weekday": 3, "opens_at": "10:00", "closes_at": "18:00"},
            ],
        }
    ],
}


# --- Organisations --------------------------------------------------------------------------


def test_organisations_list_and_detail(client, make_organisation, django_assert_num_queries):
    for index in range(5):
        make_organisation(f"Org {index}")
    suspended = make_organisation("Suspended", suspended=True)
    # Token with its rate-limit count, then the page.
    with django_assert_num_queries(2):
        response = client.get("/api/v1/organisations", {"limit": 50})
    names = {row["name"] for row in response.json()["results"]}
    assert "Org 3" in names and "Suspended" not in names
    org = Organisation.objects.get(name="Org 3")
    assert client.get(f"/api/v1/organisations/{org.pk}").json()["name"] == "Org 3"
    hidden = client.get(f"/api/v1/organisations/{suspended.pk}")
    unknown = client.get(f"/api/v1/organisations/{UNKNOWN}")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["detail"] == unknown.json()["detail"]


def test_organisations_filter_by_kind(client, make_organisation):
    make_organisation("Shelter", kind="shelter")
    results = client.get("/api/v1/organisations", {"kind": "shelter"}).json()["results"]
    assert [row["name"] for row in results] == ["Shelter"]


def test_patch_me_edits_own_profile(client, organisation):
    response = client.patch(
        "/api/v1/organisations/me",
        {"description": "New", "languages": ["pt", "zh-hant"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    organisation.refresh_from_db()
    assert organisation.description == "New"
    assert organisation.languages == ["pt", "zh-Hant"]
    assert client.get("/api/v1/organisations/me").json()["description"] == "New"


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"verified": True}, "/verified"),
        ({"kind": "other"}, "/kind"),
        ({"languages": ["not a tag"]}, "/languages/0"),
        ({"website": "not a url"}, "/website"),
    ],
)
def test_patch_me_rejects_bad_fields(client, organisation, body, pointer):
    response = client.patch("/api/v1/organisations/me", body, format="json")
    assert response.status_code == 400
    assert pointer in [e["pointer"] for e in response.json()["errors"]]
    organisation.refresh_from_db()
    assert organisation.verified is False
    assert organisation.kind == "clinic"


def test_patch_me_needs_directory_write(api_client_for, organisation):
    reader = api_client_for(organisation, scopes=["directory:read"])
    response = reader.patch("/api/v1/organisations/me", {"description": "x"}, format="json")
    assert response.status_code == 403


# --- Taxonomy -------------------------------------------------------------------------------


def term_names(client, accept_language=None) -> dict:
    headers = {"HTTP_ACCEPT_LANGUAGE": accept_language} if accept_language else {}
    response = client.get("/api/v1/taxonomy-terms", **headers)
    assert response.status_code == 200
    return response, {row["code"]: row["name"] for row in response.json()["results"]}


def test_taxonomy_is_seeded_in_every_network_language(client):
    _, names = term_names(client)
    assert len(names) >= 18
    from partners.models import TaxonomyTerm

    for term in TaxonomyTerm.objects.all():
        assert set(term.names) >= {"en", "es", "fr", "pt", "ro", "ru", "th", "zh", "tl"}


@pytest.mark.parametrize(
    ("header", "expected", "language"),
    [
        ("es", "Pruebas de ITS", "es"),
        ("th-TH,th;q=0.9", "ตรวจโรคติดต่อทางเพศสัมพันธ์", "th"),
        ("zh-CN", "性传播感染检测", "zh"),
        ("de-DE,tl;q=0.5", "Pagsusuri sa STI", "tl"),
        ("de-DE,nl;q=0.8", "STI testing", "en"),
        (None, "STI testing", "en"),
    ],
)
def test_names_follow_accept_language_with_english_fallback(client, header, expected, language):
    response, names = term_names(client, header)
    assert names["sti-testing"] == expected
    assert response["Content-Language"] == language


def test_a_term_missing_a_translation_falls_back_to_english(client):
    from partners.models import TaxonomyTerm

    TaxonomyTerm.objects.create(code="test-only", names={"en": "Only English"})
    _, names = term_names(client, "ro")
    assert names["test-only"] == "Only English"


# --- Services -------------------------------------------------------------------------------


def test_create_service_with_locations_schedules_and_capacity(client, organisation):
    response = client.post("/api/v1/services", SERVICE, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["organisation"]["id"] == str(organisation.pk)
    assert {t["code"] for t in body["taxonomy"]} == {"sti-testing", "hiv-prep-pep"}
    assert body["languages"] == ["pt", "th", "pt-BR"]
    assert len(body["locations"][0]["schedules"]) == 2
    assert body["capacity"]["version"] == 1
    service = Service.objects.get(pk=body["id"])
    assert sorted(service.taxonomy_codes) == ["hiv-prep-pep", "sti-testing"]
    assert CapacityHistory.objects.filter(service=service).count() == 1


def test_detail_names_taxonomy_in_the_callers_language(client, make_service):
    service = make_service()
    body = client.get(f"/api/v1/services/{service.pk}", HTTP_ACCEPT_LANGUAGE="fr").json()
    assert body["taxonomy"] == [{"code": "sti-testing", "name": "Dépistage des IST"}]


# What the schema refuses is a 400; what it allows but a rule refuses (a code the taxonomy does
# not hold, fields that contradict each other, a time zone no database knows), a 422.
@pytest.mark.parametrize(
    ("change", "pointer", "status"),
    [
        ({"taxonomy": ["astrology"]}, "/taxonomy", 422),
        ({"taxonomy": []}, "/taxonomy", 400),
        ({"languages": ["xx-invalid-tag-!!"]}, "/languages/0", 400),
        ({"cost": "cheap"}, "/cost", 400),
        ({"minimum_age": 30, "maximum_age": 18}, "/maximum_age", 422),
        ({"organisation": UNKNOWN}, "/organisation", 400),
        ({"locations": [{"latitude": 91, "longitude": 0}]}, "/locations/0/latitude", 400),
        ({"locations": [{"latitude": 10, "longitude": -181}]}, "/locations/0/longitude", 400),
        ({"locations": [{"latitude": 10}]}, "/locations/0/longitude", 422),
        ({"locations": [{"time_zone": "Mars/Olympus"}]}, "/locations/0/time_zone", 422),
        (
            {
                "locations": [
                    {"schedules": [{"weekday": 8, "opens_at": "10:00", "closes_at": "11:00"}]}
                ]
            },
            "/locations/0/schedules/0/weekday",
            400,
        ),
    ],
)
def test_bad_service_is_refused_naming_the_field(client, change, pointer, status):
    response = client.post("/api/v1/services", {**SERVICE, **change}, format="json")
    assert response.status_code == status, response.content
    assert pointer in [e["pointer"] for e in response.json()["errors"]]
    assert not Service.objects.exists()


def week(count: int) -> list[dict]:
    return [
        {"weekday": 1 + index % 7, "opens_at": f"{index % 24:02}:00", "closes_at": "23:59"}
        for index in range(count)
    ]


def test_at_most_50_schedules_a_location(client, make_service, organisation):
    too_many = {"locations": [{"name": "Site"}, {"name": "Busy", "schedules": week(51)}]}
    response = client.post("/api/v1/services", {**SERVICE, **too_many}, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {
            "pointer": "/locations/1/schedules",
            "detail": "Ensure this field has no more than 50 elements.",
        }
    ]
    assert not Service.objects.exists()
    service = make_service(organisation)
    response = client.patch(f"/api/v1/services/{service.pk}", too_many, format="json")
    assert response.status_code == 400
    assert Schedule.objects.count() == 0
    full = {"locations": [{"name": "Busy", "schedules": week(50)}]}
    response = client.patch(f"/api/v1/services/{service.pk}", full, format="json")
    assert response.status_code == 200, response.content
    assert Schedule.objects.count() == 50


def test_update_replaces_locations_and_taxonomy(client, make_service, organisation):
    service = make_service(organisation)
    response = client.patch(
        f"/api/v1/services/{service.pk}",
        {"taxonomy": ["food"], "locations": [{"name": "New site", "region": "Porto"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert [loc["name"] for loc in response.json()["locations"]] == ["New site"]
    service.refresh_from_db()
    assert service.taxonomy_codes == ["food"]
    assert list(service.taxonomy_terms.values_list("code", flat=True)) == ["food"]
    assert Location.objects.filter(service=service).count() == 1


def test_deactivate_removes_it_from_search_but_keeps_it_readable(
    client, make_service, organisation
):
    service = make_service(organisation)
    response = client.post(f"/api/v1/services/{service.pk}/deactivate")
    assert response.json()["status"] == "inactive"
    assert client.get("/api/v1/services").json()["results"] == []
    assert client.get(f"/api/v1/services/{service.pk}").status_code == 200


def test_writes_to_another_organisations_service_are_409_wrong_party(
    client, make_service, make_organisation
):
    """A published service is no secret, so not 404; and not 403, which is a missing scope."""
    theirs = make_service(make_organisation("Theirs"))
    patch = client.patch(f"/api/v1/services/{theirs.pk}", {"name": "Mine now"}, format="json")
    deactivate = client.post(f"/api/v1/services/{theirs.pk}/deactivate")
    for response in (patch, deactivate):
        assert response.status_code == 409, response.content
        assert response.json()["type"] == "/problems/wrong-party"
    theirs.refresh_from_db()
    assert (theirs.name, theirs.status) == ("Walk-in STI testing", "active")


def test_services_not_visible_are_404_like_unknown_ones(client, make_service, make_organisation):
    hidden = make_service(make_organisation("Suspended", suspended=True))
    for path in ("", "/capacity", "/capacity/history"):
        hidden_response = client.get(f"/api/v1/services/{hidden.pk}{path}")
        unknown_response = client.get(f"/api/v1/services/{UNKNOWN}{path}")
        assert hidden_response.status_code == unknown_response.status_code == 404
        assert hidden_response.json()["detail"] == unknown_response.json()["detail"]
    assert (
        client.patch(f"/api/v1/services/{UNKNOWN}", {"name": "x"}, format="json").status_code == 404
    )


def test_create_needs_directory_write(api_client_for, organisation):
    reader = api_client_for(organisation, scopes=["directory:read"])
    response = reader.post("/api/v1/services", SERVICE, format="json")
    assert response.status_code == 403
    assert response.json()["missing_scopes"] == ["directory:write"]
    assert not Capacity.objects.exists()


def test_detail_query_count_does_not_grow_with_locations(
    client, make_service, django_assert_num_queries
):
    many = [{**SERVICE["locations"][0], "name": f"Site {i}"} for i in range(8)]
    service = make_service(locations=many)
    # Token with its rate-limit count, service, locations, schedules, partnerships, terms.
    with django_assert_num_queries(6):
        response = client.get(f"/api/v1/services/{service.pk}")
    assert len(response.json()["locations"]) == 8


def test_history_and_partnership_lists_have_constant_query_counts(
    client,
    make_service,
    organisation,
    make_organisation,
    make_partnership,
    django_assert_num_queries,
):
    service = make_service(organisation)
    for index in range(6):
        make_partnership(organisation, make_organisation(f"P{index}"))
    with django_assert_num_queries(2):
        assert len(client.get("/api/v1/partnerships").json()["results"]) == 6
    with django_assert_num_queries(3):
        client.get(f"/api/v1/services/{service.pk}/capacity/history")
