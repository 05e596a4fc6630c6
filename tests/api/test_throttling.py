"""Rate limits are per OAuth application (a fresh token does not reset them) and the token
endpoint is throttled per client id against secret guessing. Windows are a day long here so
a test never straddles a window boundary."""

import re

import pytest
from django.conf import settings
from django.test import override_settings

from tests.api.helpers import assert_problem, basic_auth, token_request
from tests.conftest import issue_token


def rates(application="100000/min", token="100000/min"):
    return override_settings(
        REST_FRAMEWORK={
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {
                **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                "application": application,
                "token": token,
            },
        }
    )


def me(http, token):
    return http.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")


@rates(application="3/d")
def test_application_rate_limit_is_429_with_headers_and_survives_new_tokens(
    http, make_organisation, make_application
):
    application = make_application(make_organisation())
    first = issue_token(application)
    for remaining in (2, 1, 0):
        response = me(http, first)
        assert response.status_code == 200
        assert response["RateLimit-Policy"] == '"application";q=3;w=86400'
        match = re.fullmatch(r'"application";r=(\d+);t=(\d+)', response["RateLimit"])
        assert match and int(match[1]) == remaining and 0 < int(match[2]) <= 86400

    response = me(http, first)
    body = assert_problem(response, 429)
    assert body["type"] == "/problems/throttled"
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 86400
    assert response["RateLimit"].startswith('"application";r=0;')
    assert response["RateLimit-Policy"] == '"application";q=3;w=86400'

    # A new token of the same application is still over the limit...
    assert_problem(me(http, issue_token(application)), 429)
    # ...while another application is not.
    other = make_application(make_organisation())
    assert me(http, issue_token(other)).status_code == 200


@rates(application="1/d")
def test_unauthenticated_requests_do_not_spend_an_applications_budget(
    http, make_organisation, make_application
):
    application = make_application(make_organisation())
    for _ in range(3):
        assert_problem(http.get("/api/v1/me"), 401)
    assert me(http, issue_token(application)).status_code == 200


@pytest.mark.parametrize("basic", [True, False], ids=["basic", "body"])
@rates(token="5/d")
def test_token_endpoint_throttles_guessing_per_client_id(
    http, make_organisation, make_application, basic
):
    application = make_application(make_organisation())
    for attempt in range(5):
        response = token_request(http, application.client_id, f"guess-{attempt}", basic=basic)
        assert response.status_code == 401
    # Even the right secret is refused now: the guesser cannot tell when they hit it.
    response = token_request(http, application.client_id, application.plain_secret, basic=basic)
    body = assert_problem(response, 429)
    assert body["error"] == "slow_down"
    assert 0 < int(response["Retry-After"]) <= 86400
    # Another client is unaffected.
    other = make_application(make_organisation())
    assert token_request(http, other.client_id, other.plain_secret, basic=basic).status_code == 200


@rates(token="2/d")
def test_switching_between_basic_and_body_does_not_reset_the_count(
    http, make_organisation, make_application
):
    application = make_application(make_organisation())
    assert token_request(http, application.client_id, "a", basic=True).status_code == 401
    assert token_request(http, application.client_id, "b", basic=False).status_code == 401
    assert_problem(token_request(http, application.client_id, "c", basic=True), 429)


@rates(token="2/d")
def test_malformed_basic_header_is_still_counted(http, make_organisation, make_application):
    for _ in range(2):
        response = http.post(
            "/oauth/token",
            {"grant_type": "client_credentials"},
            HTTP_AUTHORIZATION="Basic !!!not-base64",
        )
        assert response.status_code in (400, 401)
    response = http.post(
        "/oauth/token",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION="Basic !!!not-base64",
    )
    assert_problem(response, 429)
    application = make_application(make_organisation())
    response = http.post(
        "/oauth/token",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(application.client_id, application.plain_secret),
    )
    assert response.status_code == 200


@rates(token="3/d")
def test_revocation_endpoint_shares_the_guessing_budget(http, make_organisation, make_application):
    """Revocation checks the client secret too: without a budget it is a guessing oracle."""
    application = make_application(make_organisation())
    for attempt in range(3):
        response = http.post(
            "/oauth/revoke_token",
            {"token": "whatever"},
            HTTP_AUTHORIZATION=basic_auth(application.client_id, f"guess-{attempt}"),
        )
        assert response.status_code == 401
    assert_problem(token_request(http, application.client_id, application.plain_secret), 429)
    response = http.post(
        "/oauth/revoke_token",
        {"token": "whatever"},
        HTTP_AUTHORIZATION=basic_auth(application.client_id, application.plain_secret),
    )
    assert_problem(response, 429)
