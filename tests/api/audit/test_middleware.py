"""What the audit middleware and signals record, and what they leave out."""

import pytest
from django.test import Client
from django.urls import reverse

from api.audit.models import AuditEntry
from api.audit.selectors import audit_verify

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


def test_other_organisations_object_is_recorded_as_denied(client, make_organisation):
    other = make_organisation()
    response = client.get(f"/api/v1/test-things/{other.pk}")
    unknown = client.get("/api/v1/test-things/00000000-0000-4000-8000-000000000000")
    assert response.status_code == unknown.status_code == 404
    assert response.json()["detail"] == unknown.json()["detail"]
    (entry,) = entries()
    assert entry.action == "denied GET test-thing"
    assert (entry.object_type, entry.object_id, entry.result) == (
        "organisation",
        str(other.pk),
        "404",
    )


def test_token_requests_are_recorded_without_secrets(make_organisation, make_application):
    application = make_application(make_organisation())
    response = Client().post(
        reverse("oauth:token"),
        {
            "grant_type": "client_credentials",
            "client_id": application.client_id,
            "client_secret": application.plain_secret,
        },
    )
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
    response = Client().post(
        reverse("oauth:token"),
        {
            "grant_type": "client_credentials",
            "client_id": application.client_id,
            "client_secret": "wrong",
        },
    )
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
