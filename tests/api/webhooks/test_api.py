"""The webhook endpoint API: CRUD scoped to the caller's organisation, the secret shown once,
rotation, ping, the attempts list and redelivery, the URL policy as problem documents."""

import pytest
from django.utils import timezone

from api.webhooks import services, transport
from api.webhooks.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
)
from tests.api.helpers import assert_problem
from tests.api.webhooks.test_policy_and_schedule import REFUSED

BASE = "/api/v1/webhook-endpoints"

pytestmark = pytest.mark.urls("tests.api.webhooks.urls")


@pytest.fixture
def manager(api_client_for, organisation):
    return api_client_for(organisation, ["webhooks:manage"])


@pytest.fixture
def stranger(api_client_for, make_organisation):
    return api_client_for(make_organisation("Other collective"), ["webhooks:manage"])


def create(client, url="http://127.0.0.1:9/hooks", event_types=("*",), **extra):
    response = client.post(BASE, {"url": url, "event_types": list(event_types), **extra})
    assert response.status_code == 201, response.content
    return response.json()


def test_create_shows_the_secret_once(manager):
    body = create(manager, event_types=["referral.received", "capacity.updated"])
    assert body["secret"].startswith("whsec_")
    assert body["event_types"] == ["capacity.updated", "referral.received"]
    assert body["active"] is True
    shown = manager.get(f"{BASE}/{body['id']}").json()
    assert "secret" not in shown
    listed = manager.get(BASE).json()["results"]
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]


def test_needs_the_webhooks_scope(api_client_for, organisation):
    reader = api_client_for(organisation, ["referrals:read"])
    body = assert_problem(reader.get(BASE), 403)
    assert body["missing_scopes"] == ["webhooks:manage"]


def test_unknown_fields_and_event_types_are_named(manager):
    response = manager.post(
        BASE, {"url": "http://127.0.0.1:9/", "event_types": ["nope"], "organisation": "x"}
    )
    body = assert_problem(response, 400)
    assert {e["pointer"] for e in body["errors"]} == {"/organisation"}
    response = manager.post(BASE, {"url": "http://127.0.0.1:9/", "event_types": ["nope"]})
    assert {e["pointer"] for e in assert_problem(response, 400)["errors"]} == {"/event_types/0"}
    response = manager.post(BASE, {"url": "http://127.0.0.1:9/", "event_types": []})
    assert {e["pointer"] for e in assert_problem(response, 400)["errors"]} == {"/event_types"}


# The first of the URL policy's refusals, through the API, and two more the policy refuses: plain
# http, and a name that resolves to a private address.
SSRF_PROBES = [
    *REFUSED[:6],
    ("http://93.184.216.34/hook", "https"),
    ("https://intranet.example.org/hook", "private"),
]


@pytest.mark.parametrize(("url", "why"), SSRF_PROBES)
def test_ssrf_probes_are_refused_with_a_problem_naming_the_url(
    manager, settings, monkeypatch, url, why
):
    settings.ALLOW_LOOPBACK_WEBHOOKS = False
    # Our own resolver, standing in for DNS we cannot control here.
    monkeypatch.setattr(transport, "resolve", lambda host, port: ["192.168.10.20"])
    # A string the schema allows, refused by the address policy: 422.
    body = assert_problem(manager.post(BASE, {"url": url, "event_types": ["*"]}), 422)
    assert body["errors"][0]["pointer"] == "/url"
    assert why in body["errors"][0]["detail"]
    assert not WebhookEndpoint.objects.exists()


def test_patch_checks_the_url_too(manager, settings):
    endpoint = create(manager)
    settings.ALLOW_LOOPBACK_WEBHOOKS = False
    response = manager.patch(f"{BASE}/{endpoint['id']}", {"url": "https://10.0.0.1/"})
    assert assert_problem(response, 422)["errors"][0]["pointer"] == "/url"


def test_urls_are_stored_normalised_as_they_will_be_sent(manager, monkeypatch):
    monkeypatch.setattr(transport, "resolve", lambda host, port: ["127.0.0.1"])
    endpoint = create(manager, url="http://Bücher.example:8080/hooks/é ü?q=ñ&x=%41")
    expected = "http://xn--bcher-kva.example:8080/hooks/%C3%A9%20%C3%BC?q=%C3%B1&x=%41"
    assert endpoint["url"] == expected
    assert WebhookEndpoint.objects.get().url == expected
    response = manager.patch(f"{BASE}/{endpoint['id']}", {"url": "http://127.0.0.1:9/ça"})
    assert response.json()["url"] == "http://127.0.0.1:9/%C3%A7a"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://☃.example/hook", "not a valid domain name"),
        ("http://127.0.0.1:9/" + "é" * 1000, "too long once percent-encoded"),
    ],
)
def test_urls_that_cannot_be_normalised_are_a_problem_not_a_500(manager, url, why):
    body = assert_problem(manager.post(BASE, {"url": url, "event_types": ["*"]}), 422)
    assert body["errors"][0]["pointer"] == "/url" and why in body["errors"][0]["detail"]
    assert not WebhookEndpoint.objects.exists()


def test_other_organisations_endpoints_look_unknown(manager, stranger):
    endpoint = create(manager)
    unknown = "00000000-0000-4000-8000-000000000000"
    for path in (f"{BASE}/{endpoint['id']}", f"{BASE}/{unknown}"):
        assert_problem(stranger.get(path), 404)
        assert_problem(stranger.patch(path, {"description": "x"}), 404)
        assert_problem(stranger.delete(path), 404)
        assert_problem(stranger.post(path + "/rotate-secret"), 404)
        assert_problem(stranger.post(path + "/ping"), 404)
        assert_problem(stranger.get(path + "/deliveries"), 404)
    theirs = stranger.get(f"{BASE}/{endpoint['id']}").json()
    unknowns = stranger.get(f"{BASE}/{unknown}").json()
    assert {k: v for k, v in theirs.items() if k != "instance"} == {
        k: v for k, v in unknowns.items() if k != "instance"
    }
    assert stranger.get(BASE).json()["results"] == []


def test_patch_and_delete(manager):
    endpoint = create(manager)
    path = f"{BASE}/{endpoint['id']}"
    changed = manager.patch(path, {"event_types": ["referral.received"], "description": "CRM"})
    assert changed.json()["event_types"] == ["referral.received"]
    disabled = manager.patch(path, {"active": False}).json()
    assert disabled["active"] is False and disabled["disabled_reason"]
    assert manager.delete(path).status_code == 204
    assert_problem(manager.get(path), 404)


def test_rotate_keeps_the_old_secret_signing_for_a_day(manager):
    endpoint = create(manager)
    rotated = manager.post(f"{BASE}/{endpoint['id']}/rotate-secret").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != endpoint["secret"]
    assert rotated["previous_secret_expires"]
    row = WebhookEndpoint.objects.get(id=endpoint["id"])
    assert services.signing_secrets(row, timezone.now()) == [
        rotated["secret"],
        endpoint["secret"],
    ]


def test_ping_queues_a_delivery_and_redeliver_is_scoped(
    manager, stranger, django_capture_on_commit_callbacks
):
    endpoint = create(manager)
    with django_capture_on_commit_callbacks() as callbacks:
        response = manager.post(f"{BASE}/{endpoint['id']}/ping")
    assert response.status_code == 202
    assert len(callbacks) == 1, "queued on commit, not before"
    ping = response.json()
    assert ping["event_type"] == "ping" and ping["sequence"] == 1 and ping["status"] == "pending"
    path = f"/api/v1/deliveries/{ping['id']}/redeliver"
    assert_problem(stranger.post(path), 404)
    WebhookDelivery.objects.filter(id=ping["id"]).update(status=DeliveryStatus.FAILED)
    again = manager.post(path)
    assert again.status_code == 202 and again.json()["status"] == "pending"


def test_ping_to_a_disabled_endpoint_is_a_conflict(manager):
    endpoint = create(manager)
    manager.patch(f"{BASE}/{endpoint['id']}", {"active": False})
    assert_problem(manager.post(f"{BASE}/{endpoint['id']}/ping"), 409)


@pytest.mark.parametrize("count", [1, 30])
def test_lists_use_constant_queries(manager, django_assert_num_queries, count):
    endpoints = [create(manager) for _ in range(count)]
    for endpoint in endpoints:
        manager.post(f"{BASE}/{endpoint['id']}/ping")
    delivery = WebhookDelivery.objects.first()
    for _ in range(count):
        WebhookDeliveryAttempt.objects.create(
            delivery=delivery, endpoint=delivery.endpoint, status_code=500, latency_ms=3
        )
    # Authentication, throttle window and audit are the same for every request; only the
    # list's own queries could grow with the page, and they must not.
    with django_assert_num_queries(_baseline(manager, delivery.endpoint_id) + 1):
        assert len(manager.get(BASE).json()["results"]) == min(count, 25)
    path = f"{BASE}/{delivery.endpoint_id}/deliveries"
    with django_assert_num_queries(_baseline(manager, delivery.endpoint_id) + 2):
        results = manager.get(path).json()["results"]
    assert len(results) == min(count, 25)
    assert results[0]["status_code"] == 500 and results[0]["event_type"] == "ping"


def _baseline(client, endpoint_id) -> int:
    """Queries a read costs around its view (token and rate limit): a detail read's, less its
    one look-up."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(f"{BASE}/{endpoint_id}").status_code == 200
    return len(ctx.captured_queries) - 1
