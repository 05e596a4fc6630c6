"""Every error on a FHIR route is an OperationOutcome (application/fhir+json), whatever made it:
DRF (401, 403, 405, 406, 415, 429), Django (404 for no route, 413), the project's error
middleware (500, 503, a NUL in the path) or a service's domain error. Never problem+json."""

import json
import uuid

import pytest
from django.conf import settings
from django.db import OperationalError
from django.test import override_settings

from referrals.fhir import views
from tests.conftest import issue_token
from tests.referrals.fhir.conftest import BASE, get, outcome, post


def test_no_token_is_401_with_the_bearer_challenge(db, anonymous):
    response = get(anonymous, "/Task")
    body = outcome(response, 401)
    assert body["issue"][0]["code"] == "login"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_missing_scope_is_403_naming_it(api_client_for, organisation):
    client = api_client_for(organisation, ["directory:read"])
    body = outcome(get(client, "/Task"), 403)
    assert body["issue"][0]["code"] == "forbidden"
    assert "referrals:read" in body["issue"][0]["diagnostics"]


@pytest.mark.parametrize("path", ["/Patient", "/Task/not-a-uuid", "/task", "/Task/", "/metadata/x"])
def test_no_such_route_is_a_404_outcome(client, path):
    body = outcome(get(client, path), 404)
    assert body["issue"][0]["code"] == "not-found"


def test_an_unknown_id_is_a_404_outcome(client):
    body = outcome(get(client, f"/Task/{uuid.uuid4()}"), 404)
    assert body["issue"][0]["code"] == "not-found"


def test_a_method_not_served_is_405_with_allow(client):
    response = client.delete(f"{BASE}/Task/{uuid.uuid4()}")
    body = outcome(response, 405)
    assert body["issue"][0]["code"] == "not-supported"
    assert "GET" in response["Allow"]


@pytest.mark.parametrize(
    ("query", "accept"),
    [("?_format=xml", None), ("?_format=application/fhir+xml", None), ("", "application/fhir+xml")],
)
def test_anything_but_json_is_406(client, query, accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    body = outcome(client.get(f"{BASE}/Organization{query}", **headers), 406)
    assert body["issue"][0]["code"] == "not-supported"


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        ("?_format=json", None),
        ("", "application/json"),
        ("", "*/*"),
        ("", "application/fhir+json; q=0.9, text/html"),
    ],
)
def test_json_in_any_of_its_names_is_served(client, query, accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = client.get(f"{BASE}/Organization{query}", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/fhir+json"


def test_xml_bodies_are_415(client):
    response = client.generic("POST", BASE, "<Bundle/>", "application/fhir+xml")
    body = outcome(response, 415)
    assert body["issue"][0]["code"] == "not-supported"


def test_broken_json_is_400(client):
    response = client.generic("POST", BASE, "{", "application/fhir+json")
    body = outcome(response, 400)
    assert body["issue"][0]["code"] == "structure"


def test_rate_limit_is_429_with_retry_after(make_organisation, make_application, anonymous):
    application = make_application(make_organisation())
    token = issue_token(application)
    rates = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"application": "1/d", "token": "1/d"},
    }
    with override_settings(REST_FRAMEWORK=rates):
        assert (
            anonymous.get(f"{BASE}/Organization", HTTP_AUTHORIZATION=f"Bearer {token}").status_code
            == 200
        )
        response = anonymous.get(f"{BASE}/Organization", HTTP_AUTHORIZATION=f"Bearer {token}")
    body = outcome(response, 429)
    assert body["issue"][0]["code"] == "throttled"
    assert int(response["Retry-After"]) > 0


def read_a_task_failing_with(client, monkeypatch, error: Exception):
    """GET a Task while the selector behind it raises `error`."""

    def fail(**kwargs):
        raise error

    monkeypatch.setattr(views.selectors, "referral_for_party", fail)
    return get(client, f"/Task/{uuid.uuid4()}")


def test_a_crash_is_a_500_outcome_without_details(client, monkeypatch):
    response = read_a_task_failing_with(client, monkeypatch, RuntimeError("crash-marker inside"))
    body = outcome(response, 500)
    assert body["issue"][0]["code"] == "exception"
    assert "crash-marker" not in response.content.decode()


def test_an_unreachable_database_is_a_503_outcome(client, monkeypatch):
    down = OperationalError("server closed the connection")
    response = read_a_task_failing_with(client, monkeypatch, down)
    body = outcome(response, 503)
    assert body["issue"][0]["code"] == "transient"
    assert response["Retry-After"] == "5"


def test_a_nul_in_the_path_is_a_400_outcome(client):
    outcome(client.get(f"{BASE}/Task/%00"), 400)


def test_a_body_over_the_limit_is_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post(client, "", {"resourceType": "Bundle", "type": "transaction", "x": "y" * 2000})
    outcome(response, 413)


def test_errors_elsewhere_stay_problem_documents(client):
    response = client.get("/api/v1/nowhere")
    assert response["Content-Type"] == "application/problem+json"
    assert json.loads(response.content)["status"] == 404
