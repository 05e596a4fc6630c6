"""Inputs Schemathesis found answering 500 against the running stack (`make verify`), kept here
so they stay fixed."""

import pytest

from tests.api.helpers import assert_problem, basic_auth


@pytest.mark.parametrize(
    "value",
    ["6964-10-29T01:03:34.642766+21:33", "2026-11-28T10:00:00", "2026-11-28T10:00:00-15:59"],
)
def test_hsds_modified_after_with_any_offset_is_answered(client, value):
    response = client.get("/api/v1/hsds/organizations", {"modified_after": value})
    assert response.status_code == 200, response.content


def test_hsds_modified_after_impossible_date_is_a_400(client):
    response = client.get("/api/v1/hsds/organizations", {"modified_after": "2026-13-45T00:00:00Z"})
    assert assert_problem(response, 400)["errors"][0]["pointer"] == "/modified_after"


def test_options_is_405_not_a_500(client):
    assert_problem(client.options("/api/v1/referrals?box=inbox"), 405)


@pytest.mark.parametrize("url", ["/api/v1/organisations?kind=a%00b", "/api/v1/services?q=%00"])
def test_a_nul_in_the_query_string_is_a_400(client, url):
    assert_problem(client.get(url), 400)


@pytest.mark.parametrize("url", ["/api/v1/referrals/claim/AB%00CD", "/api/v1/services/%00"])
def test_a_nul_in_the_path_is_a_400(client, url):
    """The claim code is looked up as text, which PostgreSQL cannot hold NUL in (issue 11)."""
    assert "NUL" in assert_problem(client.get(url), 400)["detail"]


def test_a_nul_in_a_client_id_is_unknown_not_a_500(http):
    response = http.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "client_id": "a\x00b", "client_secret": "x"},
    )
    assert assert_problem(response, 401)["error"] == "invalid_client"
    response = http.post(
        "/oauth/token",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth("a\x00b", "x"),
    )
    assert assert_problem(response, 401)["error"] == "invalid_client"


def test_a_nul_in_a_json_string_is_a_400_naming_the_field(client):
    response = client.patch("/api/v1/organisations/me", {"region": "Lis\x00boa"}, format="json")
    assert assert_problem(response, 400)["errors"][0]["pointer"] == "/region"


def test_stats_ending_in_year_one_is_a_400(client):
    response = client.get("/api/v1/stats/referrals?end=0001-01-03")
    assert assert_problem(response, 400)["errors"][0]["pointer"] == "/end"


def test_an_empty_taxonomy_code_is_refused_not_dropped(client):
    response = client.post("/api/v1/services/search", {"taxonomy": [""]}, format="json")
    assert assert_problem(response, 400)["errors"][0]["pointer"].startswith("/taxonomy")
