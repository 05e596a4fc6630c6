"""What the audit middleware and signals record, and what they leave out."""

import base64

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from api.audit.models import AuditEntry
from api.audit.selectors import audit_verify
from api.throttling import claimed_client_id

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.audit.urls")]


def entries():
    return list(AuditEntry.objects.order_by("sequence"))


def test_write_is_recorded_with_route_object_and_result(client):
    thing = client.organisation.pk
    response = client.post(f"/api/v1/test-things/{thing}", {}, HTTP_X_REQUEST_ID="req-12345678")
    assert response.status_code == 201
    (entry,) = entries()
    assert entry.action == "POST test-thing"
    assert entry.object_type == "organisation"
    assert entry.object_id == str(thing)
    assert entry.result == "201"
    assert entry.actor_organisation == client.organisation.pk
    assert entry.actor_application == client.application.client_id
    assert entry.request_id == "req-12345678"


def test_reads_are_not_recorded(client):
    assert client.get("/api/v1/me").status_code == 200
    assert entries() == []


def test_a_search_sent_as_post_is_a_read_and_not_recorded(client):
    response = client.post("/api/v1/services/search", {"walk_in": True}, format="json")
    assert response.status_code == 200
    assert entries() == []


def test_missing_token_is_recorded(anonymous):
    assert anonymous.get("/api/v1/me").status_code == 401
    (entry,) = entries()
    assert (entry.action, entry.result, entry.actor_organisation) == ("GET me", "401", None)


def test_missing_scope_is_recorded(api_client_for, organisation):
    reader = api_client_for(organisation, scopes=["directory:read"])
    assert reader.post(f"/api/v1/test-things/{organisation.pk}", {}).status_code == 403
    (entry,) = entries()
    assert (entry.result, entry.actor_organisation) == ("403", organisation.pk)


def test_every_404_on_an_object_is_recorded_as_denied_with_the_id_asked_for(
    client, make_organisation
):
    """Another organisation's object and an unknown id are recorded alike (test_denials.py:
    doing more for one would tell them apart)."""
    other = make_organisation()
    unknown = "00000000-0000-4000-8000-000000000000"
    response = client.get(f"/api/v1/test-things/{other.pk}")
    missing = client.get(f"/api/v1/test-things/{unknown}")
    assert response.status_code == missing.status_code == 404
    assert response.json()["detail"] == missing.json()["detail"]
    assert [
        (entry.action, entry.object_type, entry.object_id, entry.result) for entry in entries()
    ] == [
        ("denied GET test-thing", "organisation", str(other.pk), "404"),
        ("denied GET test-thing", "organisation", unknown, "404"),
    ]


def test_a_404_without_an_object_in_the_url_is_not_a_denial(client):
    assert client.get("/api/v1/no-such-route").status_code == 404
    assert entries() == []


def request_token(application, secret: str):
    return Client().post(
        reverse("oauth:token"),
        {
            "grant_type": "client_credentials",
            "client_id": application.client_id,
            "client_secret": secret,
        },
    )


def test_token_requests_are_recorded_without_secrets(make_organisation, make_application):
    application = make_application(make_organisation())
    response = request_token(application, application.plain_secret)
    assert response.status_code == 200
    token = response.json()["access_token"]
    (entry,) = entries()
    assert (entry.action, entry.result) == ("POST oauth:token", "200")
    assert entry.actor_application == application.client_id
    stored = " ".join(str(v) for v in AuditEntry.objects.values_list().get())
    assert application.plain_secret not in stored
    assert token not in stored


def test_failed_token_request_is_recorded(make_organisation, make_application):
    application = make_application(make_organisation())
    response = request_token(application, "wrong")
    assert response.status_code == 401
    (entry,) = entries()
    assert (entry.result, entry.actor_application) == ("401", application.client_id)
    assert audit_verify() is None


def test_head_endpoint(client, anonymous):
    client.post(f"/api/v1/test-things/{client.organisation.pk}", {})
    last = AuditEntry.objects.order_by("-sequence").first()
    response = client.get("/api/v1/audit/head")
    assert response.status_code == 200
    assert response.json() == {"sequence": last.sequence, "hash": last.hash}
    assert anonymous.get("/api/v1/audit/head").status_code == 401


def test_a_token_request_names_the_client_the_rate_limit_counts(
    make_organisation, make_application
):
    """One reading of the Basic header for the audit trail and the rate limit: the scheme in any
    case, the id form-decoded (RFC 6749 §2.3.1)."""
    from partners.models import Application

    application = make_application(make_organisation())
    Application.objects.filter(pk=application.pk).update(client_id="partner one/x")
    basic = base64.b64encode(b"partner+one%2Fx:wrong").decode()
    response = Client().post(
        reverse("oauth:token"),
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=f"basic {basic}",
    )
    assert response.status_code == 401
    (entry,) = entries()
    assert entry.actor_application == "partner one/x"
    request = RequestFactory().post("/", HTTP_AUTHORIZATION=f"basic {basic}")
    assert claimed_client_id(request) == entry.actor_application
