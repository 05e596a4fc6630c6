"""Every error is an RFC 9457 problem document, whoever produced it: DRF, Django's URL
resolver, the OAuth toolkit or an exception nobody caught. Never HTML, never a trace."""

import json

import pytest

from api.errors import field_errors
from api.parsers import nested_deeper
from tests.api.helpers import assert_problem
from tests.conftest import issue_token

pytestmark = pytest.mark.urls("tests.api.urls")


@pytest.fixture
def writer(make_organisation, make_application):
    application = make_application(make_organisation())
    return {"HTTP_AUTHORIZATION": f"Bearer {issue_token(application)}"}


def test_validation_error_lists_fields_with_json_pointers(http, writer):
    response = http.post(
        "/api/v1/_probe",
        {"name": "this name is far too long", "items": [{"count": 1}, {"count": -1}, {}]},
        content_type="application/json",
        **writer,
    )
    body = assert_problem(response, 400)
    assert body["type"] == "/problems/validation-error"
    pointers = {error["pointer"]: error["detail"] for error in body["errors"]}
    assert set(pointers) == {"/name", "/items/1/count", "/items/2/count"}
    assert "20" in pointers["/name"]


def test_validation_of_a_missing_body_names_each_required_field(http, writer):
    response = http.post("/api/v1/_probe", {}, content_type="application/json", **writer)
    body = assert_problem(response, 400)
    assert sorted(error["pointer"] for error in body["errors"]) == ["/items", "/name"]


def test_non_object_body_is_a_root_pointer(http, writer):
    response = http.post("/api/v1/_probe", [1, 2], content_type="application/json", **writer)
    body = assert_problem(response, 400)
    assert [error["pointer"] for error in body["errors"]] == ["/"]


def test_valid_body_passes(http, writer):
    response = http.post(
        "/api/v1/_probe",
        {"name": "ok", "items": [{"count": 2}]},
        content_type="application/json",
        **writer,
    )
    assert response.status_code == 201
    assert response.json() == {"name": "ok", "items": [{"count": 2}]}


@pytest.mark.parametrize("payload", ['{"name": ', "not json", '{"name": "x",}', "\xff"])
def test_malformed_json_is_400(http, writer, payload):
    response = http.post("/api/v1/_probe", payload, content_type="application/json", **writer)
    body = assert_problem(response, 400)
    assert body["type"] == "/problems/malformed-json"
    # The parser's own message quotes the body; the problem must not.
    assert payload not in body["detail"]


@pytest.mark.parametrize(
    "payload",
    [
        "[" * 5000 + "]" * 5000,
        '{"a":' * 5000 + "1" + "}" * 5000,
        '{"items": ' + "[" * 40 + "]" * 40 + "}",
    ],
    ids=["arrays-5000", "objects-5000", "arrays-41"],
)
def test_json_nested_too_deep_is_400(http, writer, payload):
    """Python's decoder recurses per level: 5,000 levels were a RecursionError and a 500."""
    response = http.post("/api/v1/_probe", payload, content_type="application/json", **writer)
    assert "nested more than 32 levels" in assert_problem(response, 400)["detail"]


def test_json_nested_to_the_limit_reaches_validation(http, writer):
    payload = '{"name": "ok", "items": ' + "[" * 31 + "]" * 31 + "}"
    assert nested_deeper(json.loads(payload), 32) is False
    assert nested_deeper(json.loads(payload), 31) is True
    response = http.post("/api/v1/_probe", payload, content_type="application/json", **writer)
    assert assert_problem(response, 400)["type"] == "/problems/validation-error"


def test_unsupported_media_type_is_415(http, writer):
    response = http.post("/api/v1/_probe", {"name": "x", "items": "y"}, **writer)
    body = assert_problem(response, 415)
    assert "multipart/form-data" in body["detail"]
    response = http.post(
        "/api/v1/_probe",
        "name=x",
        content_type="application/x-www-form-urlencoded",
        **writer,
    )
    assert_problem(response, 415)


def test_method_not_allowed_is_405_with_allow(http, writer):
    response = http.delete("/api/v1/me", **writer)
    body = assert_problem(response, 405)
    assert "DELETE" in body["detail"]
    assert "GET" in response["Allow"]


def test_a_path_with_a_trailing_slash_is_a_404_problem_not_a_redirect(http):
    response = http.post("/oauth/token/", {"grant_type": "client_credentials"})
    assert assert_problem(response, 404)["route"] == "/oauth/token"


def test_method_not_allowed_outside_drf_is_a_problem(http):
    response = http.get("/oauth/revoke_token")
    assert_problem(response, 405)
    assert "POST" in response["Allow"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/no-such-thing",
        "/api/v1/me/extra",
        "/api/v2/me",
        "/nowhere",
        "/",
        "/oauth/",
        "/api/v1/organisations/not-a-uuid/../../etc/passwd",
    ],
)
def test_unknown_urls_are_404_problems(http, path):
    body = assert_problem(http.get(path), 404)
    assert body["type"] == "/problems/not-found"


def test_404_with_html_accept_is_still_a_problem(http):
    response = http.get("/nowhere", HTTP_ACCEPT="text/html")
    assert_problem(response, 404)


def test_401_and_403_are_problems(http, make_organisation, make_application):
    assert_problem(http.get("/api/v1/_probe"), 401)
    application = make_application(make_organisation(), scopes=["directory:read"])
    response = http.get("/api/v1/_probe", HTTP_AUTHORIZATION=f"Bearer {issue_token(application)}")
    assert assert_problem(response, 403)["missing_scopes"] == ["referrals:read"]


def test_authentication_comes_before_parsing(http):
    """An anonymous caller learns nothing about the body's validity."""
    response = http.post("/api/v1/_probe", "not json", content_type="application/json")
    assert_problem(response, 401)


def test_unhandled_exception_in_an_api_view_is_500_without_details(http, writer):
    response = http.get("/api/v1/_boom", **writer)
    body = assert_problem(response, 500)
    assert "boom-marker" not in response.content.decode()
    assert "RuntimeError" not in response.content.decode()
    assert body["type"] == "/problems/internal-server-error"


def test_unhandled_exception_in_a_plain_view_is_500_without_details(http):
    response = http.get("/_plain_boom")
    assert_problem(response, 500)
    assert "plain-boom-marker" not in response.content.decode()


@pytest.mark.parametrize("status", [400, 403, 404])
def test_django_exceptions_in_plain_views_keep_their_status(http, status):
    response = http.get(f"/_plain/{status}")
    assert_problem(response, status)
    assert "marker" not in response.content.decode()


def test_body_over_the_upload_limit_is_413(http, writer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"name": "x" * 2000, "items": []})
    response = http.post("/api/v1/_probe", body, content_type="application/json", **writer)
    assert_problem(response, 413)
    response = http.post("/oauth/token", {"grant_type": "client_credentials", "x": "y" * 2000})
    assert_problem(response, 413)


def test_bad_host_header_is_a_400_problem(http, settings):
    settings.ALLOWED_HOSTS = ["api.example.org"]
    response = http.get("/healthz", HTTP_HOST="evil.example.com")
    assert_problem(response, 400)


def test_oauth_errors_keep_their_rfc6749_fields(http):
    response = http.post("/oauth/token", {"grant_type": "client_credentials"})
    body = assert_problem(response, 401)
    assert body["error"] == "invalid_client"
    # OAuth client libraries read the body as JSON whatever the subtype.
    assert json.loads(response.content)["error"] == "invalid_client"


def test_successful_answers_are_plain_json(http, writer):
    response = http.get("/api/v1/me", **writer)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("NotFound", 404, "not-found"),
        ("Conflict", 409, "conflict"),
        ("Gone", 410, "gone"),
        ("PreconditionFailed", 412, "precondition-failed"),
        ("PreconditionRequired", 428, "precondition-required"),
        ("Unprocessable", 422, "unprocessable"),
        ("WrongParty", 409, "wrong-party"),
    ],
)
def test_domain_errors_become_problems(http, writer, kind, status, code):
    body = assert_problem(http.get(f"/api/v1/_domain/{kind}", **writer), status)
    assert body["type"] == f"/problems/{code}"
    assert body["detail"] == f"{kind} happened."
    assert body["hint"] == "extension-member"


def test_invalid_input_from_a_service_carries_field_errors(http, writer):
    body = assert_problem(http.get("/api/v1/_domain/InvalidInput", **writer), 400)
    assert body["type"] == "/problems/validation-error"
    assert body["errors"] == [{"pointer": "/x", "detail": "Wrong."}]


def test_json_pointers_escape_slash_and_tilde():
    """RFC 6901: "~" is written "~0" and "/" is written "~1" inside a reference token."""
    errors = field_errors({"a/b": ["bad"], "c~d": {"e": ["worse"]}, "non_field_errors": ["x"]})
    assert errors == [
        {"pointer": "/a~1b", "detail": "bad"},
        {"pointer": "/c~0d/e", "detail": "worse"},
        {"pointer": "/", "detail": "x"},
    ]
