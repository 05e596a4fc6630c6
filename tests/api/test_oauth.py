"""The OAuth 2.0 authorisation server as partners see it: client credentials only, per-application
scopes, revocation limited to one's own tokens, introspection limited to resource servers, and
nothing usable left in the database (RFC 6749, 7009, 7662, 8414, 9700)."""

import subprocess
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from oauth2_provider.models import get_access_token_model
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session

from api.errors import InvalidInput
from api.oauth import TokenView, token_checksum
from partners.models import Application
from tests.api.helpers import (
    assert_problem,
    basic_auth,
    obtain_token,
    pgserver_bin,
    token_request,
)
from tests.conftest import ALL_SCOPES, issue_token, pg_dump_args

AccessToken = get_access_token_model()


@pytest.fixture
def clinic(make_organisation, make_application):
    return make_application(make_organisation("Clínica Aberta", kind="clinic"))


@pytest.fixture
def collective(make_organisation, make_application):
    return make_application(
        make_organisation("Red Umbrella Collective", kind="sex_worker_led"),
        scopes=["directory:read", "referrals:read"],
    )


def me(http, token):
    return http.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.django_db(transaction=True)
def test_standard_client_library_gets_a_token_over_http_and_calls_me(
    live_server, make_organisation, make_application, monkeypatch
):
    # oauthlib insists on TLS; the live server speaks plain HTTP on loopback.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    organisation = make_organisation("Sin Fronteras", kind="immigrant_rights")
    application = make_application(organisation, scopes=["directory:read", "referrals:write"])

    session = OAuth2Session(client=BackendApplicationClient(client_id=application.client_id))
    token = session.fetch_token(
        token_url=live_server.url + "/oauth/token",
        client_id=application.client_id,
        client_secret=application.plain_secret,
    )
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 900
    assert "refresh_token" not in token
    assert sorted(token["scope"]) == ["directory:read", "referrals:write"]

    response = session.get(live_server.url + "/api/v1/me", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["organisation"]["id"] == str(organisation.id)
    assert body["organisation"]["name"] == "Sin Fronteras"
    assert body["client_id"] == application.client_id
    assert body["scopes"] == ["directory:read", "referrals:write"]


def test_credentials_in_the_body_work_too(http, clinic):
    response = token_request(http, clinic.client_id, clinic.plain_secret, basic=False)
    assert response.status_code == 200
    assert me(http, response.json()["access_token"]).status_code == 200


@pytest.mark.parametrize("basic", [True, False], ids=["basic", "body"])
def test_wrong_secret_is_invalid_client(http, clinic, basic):
    response = token_request(http, clinic.client_id, "not-the-secret", basic=basic)
    body = assert_problem(response, 401)
    assert body["error"] == "invalid_client"
    assert not AccessToken.objects.exists()


def test_unknown_client_is_invalid_client(http, clinic):
    response = token_request(http, "no-such-client", clinic.plain_secret)
    assert assert_problem(response, 401)["error"] == "invalid_client"


def test_suspended_organisation_gets_no_token_and_its_tokens_stop(http, clinic):
    token = obtain_token(http, clinic)
    clinic.organisation.suspended = True
    clinic.organisation.save()
    assert token_request(http, clinic.client_id, clinic.plain_secret).status_code == 401
    assert_problem(me(http, token), 401)


def test_access_token_lives_15_minutes_by_default(http, clinic):
    assert settings.OAUTH2_PROVIDER["ACCESS_TOKEN_EXPIRE_SECONDS"] == 900
    before = timezone.now()
    response = token_request(http, clinic.client_id, clinic.plain_secret)
    assert response.json()["expires_in"] == 900
    stored = AccessToken.objects.get(application=clinic)
    assert (
        before + timedelta(seconds=899) <= stored.expires <= timezone.now() + timedelta(seconds=901)
    )


def test_access_token_lifetime_is_configurable(http, clinic, settings):
    # The toolkit caches its server per view class; a process reads settings once anyway.
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "ACCESS_TOKEN_EXPIRE_SECONDS": 60,
        "ALWAYS_RELOAD_OAUTHLIB_CORE": True,
    }
    try:
        response = token_request(http, clinic.client_id, clinic.plain_secret)
    finally:
        # Drop the server built with 60 s so later tests get one built from the real settings.
        if "_oauthlib_core" in vars(TokenView):
            del TokenView._oauthlib_core
    assert response.json()["expires_in"] == 60


def test_no_refresh_token_for_client_credentials(http, clinic):
    response = token_request(http, clinic.client_id, clinic.plain_secret)
    assert "refresh_token" not in response.json()


def test_expired_token_is_401(http, clinic):
    token = issue_token(clinic, expires_in=-1)
    body = assert_problem(me(http, token), 401)
    assert 'error="invalid_token"' in me(http, token)["WWW-Authenticate"]
    assert body["type"] == "/problems/invalid-token"


def test_unknown_token_is_401_with_bearer_challenge(http, clinic):
    response = me(http, "made-up-token")
    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_missing_token_is_401_with_bearer_challenge(http):
    response = http.get("/api/v1/me")
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_other_authorization_scheme_is_401(http, clinic):
    response = http.get(
        "/api/v1/me", HTTP_AUTHORIZATION=basic_auth(clinic.client_id, clinic.plain_secret)
    )
    assert_problem(response, 401)
    assert 'error="invalid_request"' in response["WWW-Authenticate"]


# --- scopes --------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", [None, "", " "], ids=["absent", "empty", "blank"])
def test_empty_scope_request_gets_exactly_the_applications_scopes(http, collective, scope):
    response = token_request(http, collective.client_id, collective.plain_secret, scope=scope)
    assert response.status_code == 200
    assert sorted(response.json()["scope"].split()) == ["directory:read", "referrals:read"]
    token = response.json()["access_token"]
    assert me(http, token).json()["scopes"] == ["directory:read", "referrals:read"]


@pytest.mark.parametrize(
    "scope", ["referrals:read", " referrals:read  ", "referrals:read referrals:read"]
)
def test_subset_of_granted_scopes_can_be_asked_for(http, collective, scope):
    response = token_request(http, collective.client_id, collective.plain_secret, scope=scope)
    assert response.json()["scope"] == "referrals:read"


@pytest.mark.parametrize(
    "scope",
    ["webhooks:manage", "directory:read webhooks:manage", "introspection", "no-such-scope"],
)
def test_scope_not_granted_is_invalid_scope_naming_it(http, collective, scope):
    response = token_request(http, collective.client_id, collective.plain_secret, scope=scope)
    body = assert_problem(response, 400)
    assert body["error"] == "invalid_scope"
    assert body["type"] == "/problems/oauth-error"
    refused = [s for s in scope.split() if s not in collective.scopes]
    assert all(name in body["error_description"] for name in refused), body
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", '{"grant_type": "client_credentials"}'),
        ("text/plain", "grant_type=client_credentials"),
        ("", ""),
    ],
)
def test_a_token_request_that_is_not_a_form_is_told_to_send_one(
    http, collective, content_type, body
):
    response = http.post(
        "/oauth/token",
        body,
        content_type=content_type,
        HTTP_AUTHORIZATION=basic_auth(collective.client_id, collective.plain_secret),
    )
    problem = assert_problem(response, 400)
    assert problem["error"] == "invalid_request"
    assert "application/x-www-form-urlencoded" in problem["error_description"]
    assert "client_credentials grant is supported" not in problem["detail"]


def test_partner_can_never_get_introspection_even_if_listed(http, collective):
    """Introspection is never among a client's scopes: every way of writing it there is
    refused, and a token request for it is invalid_scope."""
    from partners.services import application_create

    with pytest.raises(InvalidInput):
        application_create(organisation=collective.organisation, scopes=["introspection"])
    with pytest.raises(IntegrityError), transaction.atomic():
        Application.objects.filter(pk=collective.pk).update(
            scopes=["directory:read", "introspection"]
        )
    response = token_request(
        http, collective.client_id, collective.plain_secret, scope="introspection"
    )
    assert assert_problem(response, 400)["error"] == "invalid_scope"


def test_a_partners_client_cannot_be_made_a_resource_server(collective):
    """The flag that grants introspection cannot sit beside partner scopes, whether set by
    the steward's admin form (which validates the constraint) or straight in the database."""
    collective.resource_server = True
    with pytest.raises(ValidationError):
        collective.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        Application.objects.filter(pk=collective.pk).update(resource_server=True)


@pytest.mark.urls("tests.api.urls")
def test_missing_scope_is_403_naming_it(http, make_organisation, make_application):
    application = make_application(
        make_organisation(), scopes=["referrals:read", "referrals:write"]
    )
    token = obtain_token(http, application)
    assert http.get("/api/v1/_probe", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    response = http.post(
        "/api/v1/_probe",
        {"name": "x", "items": []},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    body = assert_problem(response, 403)
    assert body["missing_scopes"] == ["directory:write"]
    assert "directory:write" in body["detail"]
    assert body["type"] == "/problems/insufficient-scope"
    assert response["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="directory:write"'
    )


@pytest.mark.urls("tests.api.urls")
def test_head_needs_the_scopes_of_get(http, make_organisation, make_application):
    application = make_application(make_organisation(), scopes=["directory:read"])
    token = obtain_token(http, application)
    response = http.head("/api/v1/_probe", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 403
    assert 'scope="referrals:read"' in response["WWW-Authenticate"]


@pytest.mark.urls("tests.api.urls")
def test_an_operation_without_declared_scopes_is_refused(http, clinic):
    token = obtain_token(http, clinic)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert http.get("/api/v1/_undeclared", **auth).status_code == 200
    body = assert_problem(http.delete("/api/v1/_undeclared", **auth), 403)
    assert "declares no scope" in body["detail"]


@pytest.mark.urls("tests.api.urls")
def test_scopes_are_per_token_not_per_application(http, clinic):
    """A token asked for with fewer scopes is limited to those, whatever the application has."""
    token = obtain_token(http, clinic, scope="directory:read")
    response = http.get("/api/v1/_probe", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert assert_problem(response, 403)["missing_scopes"] == ["referrals:read"]


# --- discovery (RFC 8414) ------------------------------------------------------------------


def test_authorization_server_metadata(http, clinic):
    response = http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    metadata = response.json()
    base = "http://testserver"
    assert metadata["issuer"] == base
    assert metadata["token_endpoint"] == base + "/oauth/token"
    assert metadata["revocation_endpoint"] == base + "/oauth/revoke_token"
    assert metadata["introspection_endpoint"] == base + "/oauth/introspect"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert metadata["scopes_supported"] == sorted(ALL_SCOPES)
    assert "introspection" not in metadata["scopes_supported"]
    # The advertised endpoint is the one that works.
    path = metadata["token_endpoint"].removeprefix(base)
    response = http.post(
        path,
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(clinic.client_id, clinic.plain_secret),
    )
    assert response.status_code == 200


# --- grants --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"grant_type": "password", "username": "someone", "password": "secret"},
        {"grant_type": "authorization_code", "code": "abc", "redirect_uri": "https://x.test/"},
        {"grant_type": "refresh_token", "refresh_token": "abc"},
        {"grant_type": "implicit"},
        {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "abc"},
        {},
    ],
    ids=["password", "authorization_code", "refresh_token", "implicit", "device_code", "none"],
)
def test_other_grants_are_refused(http, clinic, data):
    response = http.post(
        "/oauth/token", data, HTTP_AUTHORIZATION=basic_auth(clinic.client_id, clinic.plain_secret)
    )
    assert assert_problem(response, 400)["error"] == "unsupported_grant_type"
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize(
    "path", ["/oauth/authorize/", "/oauth/applications/", "/oauth/authorized_tokens/"]
)
def test_toolkit_user_facing_pages_are_not_mounted(http, path):
    assert_problem(http.get(path + "?response_type=token&client_id=x"), 404)


def test_token_endpoint_refuses_get(http, clinic):
    assert_problem(http.get("/oauth/token?grant_type=client_credentials"), 405)


# --- bearer transport ----------------------------------------------------------------------


@pytest.mark.parametrize("with_header", [False, True], ids=["query-only", "query-and-header"])
def test_query_string_token_is_refused_even_when_valid(http, clinic, with_header):
    token = obtain_token(http, clinic)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if with_header else {}
    response = http.get(f"/api/v1/me?access_token={token}", **headers)
    body = assert_problem(response, 401)
    assert "Authorization header" in body["detail"]
    assert 'error="invalid_request"' in response["WWW-Authenticate"]
    assert me(http, token).status_code == 200


def test_form_body_token_is_not_accepted(http, clinic):
    token = obtain_token(http, clinic)
    response = http.generic(
        "GET",
        "/api/v1/me",
        f"access_token={token}",
        content_type="application/x-www-form-urlencoded",
    )
    assert_problem(response, 401)


# --- revocation (RFC 7009) -----------------------------------------------------------------


def revoke(http, application, token):
    return http.post(
        "/oauth/revoke_token",
        {"token": token, "token_type_hint": "access_token"},
        HTTP_AUTHORIZATION=basic_auth(application.client_id, application.plain_secret),
    )


def test_revoked_token_is_401(http, clinic):
    token = obtain_token(http, clinic)
    assert me(http, token).status_code == 200
    assert revoke(http, clinic, token).status_code == 200
    assert_problem(me(http, token), 401)


def test_revocation_needs_client_authentication(http, clinic):
    token = obtain_token(http, clinic)
    response = http.post("/oauth/revoke_token", {"token": token})
    assert_problem(response, 401)
    assert me(http, token).status_code == 200


def test_a_client_cannot_revoke_another_clients_token(http, clinic, collective):
    token = obtain_token(http, clinic)
    # RFC 7009 §2.2: answer 200 whatever happened, so nothing is disclosed...
    assert revoke(http, collective, token).status_code == 200
    # ...but the token belongs to another client and keeps working.
    assert me(http, token).status_code == 200


# --- introspection (RFC 7662) --------------------------------------------------------------


@pytest.fixture
def resource_server(make_organisation):
    from partners.services import application_create

    application, secret = application_create(organisation=make_organisation("Network"), scopes=[])
    application.resource_server = True
    application.save()
    application.plain_secret = secret
    return application


def introspect(http, token, *, client=None, secret=None, placement="basic", bearer=None):
    """POST /oauth/introspect as a client: id and secret in the Basic header or the form
    body, or a bearer token."""
    data = {"token": token}
    headers = {}
    if placement == "basic":
        headers["HTTP_AUTHORIZATION"] = basic_auth(client.client_id, secret or client.plain_secret)
    elif placement == "body":
        data.update(client_id=client.client_id, client_secret=secret or client.plain_secret)
    else:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {bearer}"
    return http.post("/oauth/introspect", data, **headers)


def assert_refused(response):
    body = assert_problem(response, 401)
    assert body["error"] == "invalid_client"
    text = response.content.decode()
    assert "active" not in text and "scope" not in body and "client_id" not in body
    return body


@pytest.mark.parametrize("placement", ["basic", "body"])
def test_resource_server_can_introspect_with_its_secret(http, resource_server, clinic, placement):
    token = obtain_token(http, clinic, scope="directory:read")
    response = introspect(http, token, client=resource_server, placement=placement)
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["scope"] == "directory:read"
    assert body["client_id"] == clinic.client_id
    response = introspect(http, "not-a-token", client=resource_server, placement=placement)
    assert response.json() == {"active": False}


def test_resource_server_can_introspect_with_its_token(http, resource_server, clinic):
    introspection_token = obtain_token(http, resource_server, scope="introspection")
    token = obtain_token(http, clinic, scope="directory:read")
    response = introspect(http, token, placement="bearer", bearer=introspection_token)
    assert response.status_code == 200
    assert response.json()["client_id"] == clinic.client_id
    response = introspect(http, "not-a-token", placement="bearer", bearer=introspection_token)
    assert response.json() == {"active": False}


@pytest.mark.parametrize("placement", ["basic", "body"])
def test_a_partner_cannot_introspect_another_partners_token(http, clinic, collective, placement):
    """The attack: a partner's own valid client id and secret read another partner's token
    (active, scopes, client id). Refused exactly like a wrong secret."""
    token = obtain_token(http, collective)
    stolen = introspect(http, token, client=clinic, placement=placement)
    guessed = introspect(http, token, client=clinic, secret="wrong-secret", placement=placement)
    assert assert_refused(stolen) == assert_refused(guessed)
    assert collective.client_id not in stolen.content.decode()


def test_partner_token_cannot_introspect(http, clinic, collective):
    token = obtain_token(http, collective)
    assert_refused(introspect(http, token, placement="bearer", bearer=obtain_token(http, clinic)))
    assert_refused(introspect(http, token, placement="bearer", bearer=token))


def test_resource_server_token_without_the_scope_cannot_introspect(http, resource_server, clinic):
    without_scope = issue_token(resource_server, scopes=[])
    assert_refused(
        introspect(http, obtain_token(http, clinic), placement="bearer", bearer=without_scope)
    )


def test_a_suspended_resource_server_cannot_introspect(http, resource_server, clinic):
    introspection_token = obtain_token(http, resource_server, scope="introspection")
    resource_server.organisation.suspended = True
    resource_server.organisation.save()
    token = obtain_token(http, clinic)
    assert_refused(introspect(http, token, placement="bearer", bearer=introspection_token))
    assert_refused(introspect(http, token, client=resource_server))


def test_introspection_reports_a_suspended_organisations_token_inactive(
    http, resource_server, clinic
):
    introspection_token = obtain_token(http, resource_server, scope="introspection")
    token = obtain_token(http, clinic)
    clinic.organisation.suspended = True
    clinic.organisation.save()
    response = introspect(http, token, placement="bearer", bearer=introspection_token)
    assert response.json() == {"active": False}


def test_resource_server_default_scopes_exclude_introspection(http, resource_server):
    response = token_request(http, resource_server.client_id, resource_server.plain_secret)
    assert "introspection" not in response.json()["scope"].split()


def test_introspection_refuses_its_own_token_in_the_query_string(http, resource_server, clinic):
    introspection_token = obtain_token(http, resource_server, scope="introspection")
    token = obtain_token(http, clinic)
    response = http.post(f"/oauth/introspect?access_token={introspection_token}", {"token": token})
    assert_refused(response)


def test_introspection_is_post_only(http, resource_server, clinic):
    introspection_token = obtain_token(http, resource_server, scope="introspection")
    token = obtain_token(http, clinic)
    response = http.get(
        f"/oauth/introspect?token={token}", HTTP_AUTHORIZATION=f"Bearer {introspection_token}"
    )
    assert_problem(response, 405)
    assert "POST" in response["Allow"]
    assert "active" not in response.content.decode()


@pytest.mark.parametrize("placement", ["basic", "body"])
def test_introspection_throttles_failed_and_successful_attempts(
    http, resource_server, clinic, settings, placement
):
    """The token endpoint's budget per client id: wrong secrets and right ones both count, at
    the introspection and the token endpoint alike, so guessing there gains nothing."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "token": "4/d",
        },
    }
    token = issue_token(clinic)
    assert introspect(http, token, client=resource_server, placement=placement).status_code == 200
    for attempt in range(2):
        response = introspect(
            http, token, client=resource_server, secret=f"guess-{attempt}", placement=placement
        )
        assert_refused(response)
    assert introspect(http, token, client=resource_server, placement=placement).status_code == 200
    for secret in ("guess-again", None):
        response = introspect(
            http, token, client=resource_server, secret=secret, placement=placement
        )
        body = assert_problem(response, 429)
        assert body["error"] == "slow_down"
        assert "active" not in response.content.decode()
        assert 0 < int(response["Retry-After"]) <= 86400
    # The same budget: the token endpoint is spent for this client too; other clients are not.
    assert_problem(
        token_request(http, resource_server.client_id, resource_server.plain_secret), 429
    )
    assert token_request(http, clinic.client_id, clinic.plain_secret).status_code == 200


def test_introspection_with_a_token_is_throttled_per_client(
    http, resource_server, clinic, settings
):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "token": "2/d",
        },
    }
    introspection_token = issue_token(resource_server, scopes=["introspection"])
    token = issue_token(clinic)
    for _ in range(2):
        response = introspect(http, token, placement="bearer", bearer=introspection_token)
        assert response.status_code == 200
    assert_problem(introspect(http, token, placement="bearer", bearer=introspection_token), 429)
    # Made-up tokens share one budget of their own, so they cannot spend anyone else's.
    for attempt in range(2):
        assert_refused(introspect(http, token, placement="bearer", bearer=f"made-up-{attempt}"))
    assert_problem(introspect(http, token, placement="bearer", bearer="made-up-again"), 429)
    assert token_request(http, clinic.client_id, clinic.plain_secret).status_code == 200


# --- storage -------------------------------------------------------------------------------


def test_tokens_are_stored_only_as_checksums(http, clinic):
    token = obtain_token(http, clinic)
    stored = AccessToken.objects.get(application=clinic)
    assert stored.token == ""
    assert stored.token_checksum == token_checksum(token)
    clinic.refresh_from_db()
    assert clinic.client_secret.startswith("client_sha256$")
    assert clinic.plain_secret not in clinic.client_secret


@pytest.mark.django_db(transaction=True)
def test_database_dump_holds_no_usable_token_or_secret(http, make_organisation, make_application):
    application = make_application(make_organisation("Clínica Aberta"), scopes=ALL_SCOPES)
    token = obtain_token(http, application)
    pg_dump = pgserver_bin("pg_dump")
    args, env = pg_dump_args()
    dump = subprocess.run(
        [str(pg_dump), "--data-only", "--no-owner", *args],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    # The dump does hold the rows (so the test can fail), just nothing anyone could use.
    assert token_checksum(token) in dump
    assert application.client_id in dump
    assert token not in dump
    assert application.plain_secret not in dump
