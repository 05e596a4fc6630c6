"""The token endpoint is in the OpenAPI document as it answers: its form body, the OAuth2
client-credentials scheme with every scope described, and each answer the endpoint gives (real
requests) documented with a schema its body matches."""

from urllib.parse import urlencode

import jsonschema
import pytest
from django.conf import settings
from django.urls import reverse

from tests.api.helpers import basic_auth
from tests.api.test_openapi import generated, schema  # noqa: F401 (fixtures)

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def application(make_organisation, make_application):
    return make_application(make_organisation("Clínica Aberta"), scopes=["directory:read"])


def token_operation(document):
    return document["paths"][reverse("oauth:token")]["post"]


def test_the_scheme_describes_every_scope(schema):  # noqa: F811
    flows = schema["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flows["tokenUrl"].rstrip("/") == reverse("oauth:token").rstrip("/")
    assert set(flows["scopes"]) == set(settings.SCOPES)
    assert all(description.strip() for description in flows["scopes"].values())


def test_the_token_operation_takes_a_form(schema):  # noqa: F811
    operation = token_operation(schema)
    body = operation["requestBody"]["content"]
    assert list(body) == [FORM]
    assert body[FORM]["schema"]["properties"]["grant_type"]["enum"] == ["client_credentials"]
    assert {"clientBasic": []} in operation["security"]
    assert schema["components"]["securitySchemes"]["clientBasic"]["scheme"] == "basic"


def answer(http, document, response):
    """The body matches the schema the document gives for that status and media type."""
    responses = token_operation(document)["responses"]
    assert str(response.status_code) in responses, response.status_code
    media = response["Content-Type"].split(";")[0]
    content = responses[str(response.status_code)]["content"]
    assert media in content, (media, list(content))
    resource = {**content[media]["schema"], "components": document["components"]}
    body = response.json()
    jsonschema.validate(body, resource, cls=jsonschema.Draft202012Validator)
    return body


def post(http, data, *, application=None, content_type=FORM, secret=None):
    headers = {}
    if application is not None:
        headers["HTTP_AUTHORIZATION"] = basic_auth(
            application.client_id, secret or application.plain_secret
        )
    payload = urlencode(data) if content_type == FORM else data
    return http.post(reverse("oauth:token"), payload, content_type=content_type, **headers)


def test_every_answer_is_documented_and_matches_its_schema(http, schema, application):  # noqa: F811
    grant = {"grant_type": "client_credentials"}
    ok = answer(http, schema, post(http, grant, application=application))
    assert ok["token_type"] == "Bearer" and ok["scope"] == "directory:read"
    refused = answer(
        http, schema, post(http, {**grant, "scope": "referrals:write"}, application=application)
    )
    assert refused["status"] == 400 and refused["error"] == "invalid_scope"
    wrong = answer(http, schema, post(http, grant, application=application, secret="nope"))
    assert wrong["status"] == 401 and wrong["error"] == "invalid_client"
    as_json = answer(
        http, schema, post(http, grant, application=application, content_type="application/json")
    )
    assert as_json["status"] == 400
