"""Subscriptions (R4 backport): a webhook endpoint with the Task topic, its handshake and
heartbeats, its filters applied at fan-out, and notification Bundles with ids only."""

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from api.webhooks import services as webhooks
from api.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from referrals.fhir import codes
from referrals.fhir.models import FhirSubscription
from referrals.fhir.services import subscriptions_maintain
from referrals.fhir.structure import model
from tests.api.webhooks.receiver import Receiver
from tests.referrals.conftest import act
from tests.referrals.fhir.conftest import BASE, get, outcome, post


def subscription_body(url, *filters, heartbeat=None, **changes) -> dict:
    body = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Referrals we receive",
        "criteria": codes.TASK_TOPIC,
        "_criteria": {
            "extension": [{"url": codes.BACKPORT_FILTER, "valueString": f} for f in filters]
        },
        "channel": {
            "type": "rest-hook",
            "endpoint": url,
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": codes.BACKPORT_CONTENT, "valueCode": "id-only"}]},
        },
    }
    if not filters:
        del body["_criteria"]
    if heartbeat is not None:
        body["channel"]["extension"] = [
            {"url": codes.BACKPORT_HEARTBEAT, "valueUnsignedInt": heartbeat}
        ]
    body.update(changes)
    return body


def subscribe(client, body) -> dict:
    response = post(client, "/Subscription", body)
    assert response.status_code == 201, response.content
    return response.json()


def secret_of(resource) -> str:
    return next(e["valueString"] for e in resource["extension"] if e["url"] == codes.SIGNING_SECRET)


def validated_notification(delivery_id) -> dict:
    delivery = WebhookDelivery.objects.select_related("endpoint", "event").get(pk=delivery_id)
    body, content_type = webhooks.rendered(delivery)
    assert content_type == "application/fhir+json"
    bundle = json.loads(body)
    model("Bundle").model_validate(bundle)
    model("Parameters").model_validate(bundle["entry"][0]["resource"])
    return bundle


def parameters(bundle) -> dict:
    return {p["name"]: p for p in bundle["entry"][0]["resource"]["parameter"]}


def test_a_subscription_is_a_webhook_endpoint_with_a_handshake(receiver, receiver_org):
    created = subscribe(receiver, subscription_body("http://127.0.0.1:9/hook", heartbeat=300))
    assert created["status"] == "requested"
    assert secret_of(created).startswith("whsec_")
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert endpoint.organisation == receiver_org
    assert endpoint.payload_format == "fhir-r4-backport-id-only"
    assert secret_of(created) == endpoint.secret
    read = get(receiver, f"/Subscription/{created['id']}").json()
    assert codes.SIGNING_SECRET not in str(read), "the secret is shown once"
    (handshake,) = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert handshake.sequence == -1 and handshake.event.type == "fhir.handshake"
    bundle = validated_notification(handshake.pk)
    found = parameters(bundle)
    assert bundle["type"] == "history"
    assert found["type"]["valueCode"] == "handshake"
    assert found["status"]["valueCode"] == "requested"
    assert found["events-since-subscription-start"]["valueString"] == "0"
    assert found["topic"]["valueCanonical"] == codes.TASK_TOPIC
    # The REST API sees the same endpoint, with its deliveries.
    listed = receiver.get("/api/v1/webhook-endpoints").json()["results"]
    assert [item["id"] for item in listed] == [created["id"]]


def test_handshake_outcome_sets_the_status_and_heartbeats_follow_quiet(receiver):
    with Receiver() as hook:
        created = subscribe(receiver, subscription_body(hook.url, heartbeat=60))
        subscription = FhirSubscription.objects.get(pk=created["id"])
        webhooks.delivery_attempt(subscription.handshake_id)
        (got,) = hook.wait_for(1)
        assert got.headers["content-type"] == "application/fhir+json"
        Webhook(secret_of(created)).verify(got.body, got.headers)
        assert get(receiver, f"/Subscription/{created['id']}").json()["status"] == "active"

        assert subscriptions_maintain()["heartbeats"] == 0, "not quiet yet"
        later = timezone.now() + timedelta(seconds=61)
        assert subscriptions_maintain(now=later)["heartbeats"] == 1
        heartbeat = WebhookDelivery.objects.get(event__type="fhir.heartbeat")
        assert heartbeat.sequence == -2
        bundle = validated_notification(heartbeat.pk)
        assert parameters(bundle)["type"]["valueCode"] == "heartbeat"
        assert parameters(bundle)["status"]["valueCode"] == "active"
        webhooks.delivery_attempt(heartbeat.pk)
        hook.wait_for(2)


def test_a_failed_handshake_is_error_and_gets_no_heartbeat(receiver):
    with Receiver(default=(404, {})) as hook:
        created = subscribe(receiver, subscription_body(hook.url, heartbeat=60))
        subscription = FhirSubscription.objects.get(pk=created["id"])
        webhooks.delivery_attempt(subscription.handshake_id)
    resource = get(receiver, f"/Subscription/{created['id']}").json()
    assert resource["status"] == "error"
    assert "handshake" in resource["error"]
    assert subscriptions_maintain(now=timezone.now() + timedelta(hours=1))["heartbeats"] == 0


def test_an_ended_subscription_turns_off(receiver):
    end = (timezone.now() + timedelta(minutes=5)).isoformat()
    created = subscribe(receiver, subscription_body("http://127.0.0.1:9/hook", end=end))
    assert subscriptions_maintain(now=timezone.now() + timedelta(minutes=6))["ended"] == 1
    assert get(receiver, f"/Subscription/{created['id']}").json()["status"] == "off"


def test_filters_decide_which_events_are_delivered(
    sender, receiver, sender_org, receiver_org, fhir_create, django_capture_on_commit_callbacks
):
    as_owner = subscribe(
        receiver,
        subscription_body("http://127.0.0.1:9/a", f"Task?owner=Organization/{receiver_org.pk}"),
    )
    as_requester = subscribe(
        receiver,
        subscription_body("http://127.0.0.1:9/b", f"Task?requester=Organization/{receiver_org.pk}"),
    )
    accepted_only = subscribe(
        receiver, subscription_body("http://127.0.0.1:9/c", "Task?status=accepted")
    )
    with django_capture_on_commit_callbacks(execute=True):
        rid = fhir_create()
        act(receiver, rid, "receive")
        act(receiver, rid, "accept")

    def events(created):
        return sorted(
            (delivery.event.type, delivery.event.data["status"])
            for delivery in WebhookDelivery.objects.filter(
                endpoint_id=created["id"], sequence__gt=0
            )
        )

    assert events(as_owner) == [
        ("referral.received", "requested"),
        ("referral.status_changed", "accepted"),
        ("referral.status_changed", "received"),
    ]
    assert events(as_requester) == []
    assert events(accepted_only) == [("referral.status_changed", "accepted")]
    numbers = sorted(
        WebhookDelivery.objects.filter(endpoint_id=as_owner["id"], sequence__gt=0).values_list(
            "sequence", flat=True
        )
    )
    assert numbers == [1, 2, 3], "events are numbered apart from the handshake"
    for delivery in WebhookDelivery.objects.filter(endpoint_id=as_owner["id"], sequence__gt=0):
        bundle = validated_notification(delivery.pk)
        event = parameters(bundle)["notification-event"]["part"]
        parts = {part["name"]: part for part in event}
        assert parts["event-number"]["valueString"] == str(delivery.sequence)
        assert (
            parts["focus"]["valueReference"]["reference"] == f"http://testserver{BASE}/Task/{rid}"
        )
        assert bundle["entry"][1]["fullUrl"] == f"http://testserver{BASE}/Task/{rid}"
        assert "resource" not in bundle["entry"][1], "id-only"


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"criteria": "http://example.org/SubscriptionTopic/Encounter"}, 422),
        ({"channel": {"type": "email", "endpoint": "mailto:a@example.org"}}, 422),
        ({"channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/h", "header": ["Authorization: x"]}}, 422),
        ({"channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/h", "payload": "application/fhir+json",
                      "_payload": {"extension": [{"url": codes.BACKPORT_CONTENT, "valueCode": "full-resource"}]}}}, 422),
        ({"_criteria": {"extension": [{"url": codes.BACKPORT_FILTER, "valueString": "Task?patient=Patient/1"}]}}, 422),
        ({"_criteria": {"extension": [{"url": codes.BACKPORT_FILTER, "valueString": "Task?owner=x"}]}}, 400),
        ({"channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/h",
                      "extension": [{"url": codes.BACKPORT_HEARTBEAT, "valueUnsignedInt": 5}]}}, 422),
        ({"end": "tomorrow"}, 400),
        ({"status": "active", "reason": None}, 400),
        ({"channel": {"type": "rest-hook", "endpoint": "https://10.0.0.7/hook"}}, 422),
    ],
)  # fmt: skip
def test_what_the_network_cannot_honour_is_refused(receiver, change, status):
    body = subscription_body("http://127.0.0.1:9/hook")
    body.update(change)
    body = {key: value for key, value in body.items() if value is not None}
    outcome(post(receiver, "/Subscription", body), status)
    assert not WebhookEndpoint.objects.exists()


def test_a_private_address_is_named_by_its_fhir_element(receiver, settings):
    settings.ALLOW_LOOPBACK_WEBHOOKS = False
    body = outcome(
        post(receiver, "/Subscription", subscription_body("http://127.0.0.1:9/hook")), 422
    )
    assert ["Subscription.channel.endpoint"] in [issue.get("expression") for issue in body["issue"]]


def test_subscribing_to_tasks_needs_referrals_read(api_client_for, organisation):
    client = api_client_for(organisation, ["webhooks:manage"])
    body = outcome(post(client, "/Subscription", subscription_body("http://127.0.0.1:9/hook")), 403)
    assert "referrals:read" in body["issue"][0]["diagnostics"]


def test_subscriptions_are_listed_and_deleted_by_their_owner_only(receiver, stranger):
    created = subscribe(receiver, subscription_body("http://127.0.0.1:9/hook"))
    assert [e["resource"]["id"] for e in get(receiver, "/Subscription").json()["entry"]] == [
        created["id"]
    ]
    assert "entry" not in get(stranger, "/Subscription").json()
    outcome(stranger.delete(f"{BASE}/Subscription/{created['id']}"), 404)
    outcome(stranger.delete(f"{BASE}/Subscription/{uuid.uuid4()}"), 404)
    assert receiver.delete(f"{BASE}/Subscription/{created['id']}").status_code == 204
    assert not WebhookEndpoint.objects.exists() and not FhirSubscription.objects.exists()


def test_a_rest_ping_reaches_a_subscription_as_a_heartbeat(receiver):
    created = subscribe(receiver, subscription_body("http://127.0.0.1:9/hook"))
    response = receiver.post(f"/api/v1/webhook-endpoints/{created['id']}/ping")
    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get(event__type="ping")
    assert parameters(validated_notification(delivery.pk))["type"]["valueCode"] == "heartbeat"
    assert delivery.status == DeliveryStatus.PENDING
