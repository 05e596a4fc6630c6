"""The round trip with real parts: a clinic's FHIR client and a partner's REST client on the
same referral, a Subscription's notifications delivered by a real Celery worker through our own
Redis broker to a loopback receiver, every one signed (Standard Webhooks) and valid R4B."""

import json
import time

import pytest
from standardwebhooks import Webhook

from api.webhooks.models import DeliveryStatus, WebhookDelivery
from referrals.fhir import codes
from referrals.fhir.structure import model
from tests.api.webhooks.receiver import Receiver
from tests.referrals.conftest import act, referral_payload
from tests.referrals.fhir.conftest import get, patch, post
from tests.referrals.fhir.test_subscriptions import secret_of, subscription_body

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hook():
    with Receiver() as running:
        yield running


def notifications(hook, count: int, secret: str) -> list[dict]:
    """The first `count` notifications, verified and validated, in event order."""
    received = hook.wait_for(count, timeout=60)
    out = []
    for got in received[:count]:
        assert got.headers["content-type"] == "application/fhir+json"
        Webhook(secret).verify(got.body, got.headers)
        bundle = json.loads(got.body)
        model("Bundle").model_validate(bundle)
        model("Parameters").model_validate(bundle["entry"][0]["resource"])
        out.append(bundle)
    # Each arrives when its worker thread gets to it: order them by event number.
    return sorted(out, key=lambda b: int(summary(b)[1]))


def summary(bundle) -> tuple:
    found = {p["name"]: p for p in bundle["entry"][0]["resource"]["parameter"]}
    event = {p["name"]: p for p in found.get("notification-event", {}).get("part", [])}
    return (
        found["type"]["valueCode"],
        found["events-since-subscription-start"]["valueString"],
        event.get("focus", {}).get("valueReference", {}).get("reference"),
    )


def subscribe(client, hook, criteria: str) -> str:
    """A Subscription of `client` to `criteria` delivering to `hook`, once its handshake made it
    active: its signing secret."""
    subscription = post(client, "/Subscription", subscription_body(hook.url, criteria)).json()
    deadline = time.time() + 30
    while get(client, f"/Subscription/{subscription['id']}").json()["status"] != "active":
        assert time.time() < deadline, "the handshake never succeeded"
        time.sleep(0.1)
    return secret_of(subscription)


def test_clinic_refers_through_fhir_partner_accepts_through_rest(
    worker, hook, sender, receiver, sender_org, bundle
):
    secret = subscribe(sender, hook, f"Task?requester=Organization/{sender_org.pk}")

    created = post(sender, "", bundle(), HTTP_IDEMPOTENCY_KEY="clinic-order-1")
    assert created.status_code == 200, created.content
    rid = created.json()["entry"][1]["response"]["location"].rpartition("/")[2]

    # The receiving organisation works through the REST API.
    detail = receiver.get(f"/api/v1/referrals/{rid}")
    assert detail.status_code == 200 and detail.json()["person"]["name"] == "Mia"
    assert act(receiver, rid, "receive").status_code == 200
    assert act(receiver, rid, "accept").status_code == 200

    # The clinic follows through FHIR.
    task = get(sender, f"/Task/{rid}").json()
    assert task["status"] == "accepted"
    bundles = notifications(hook, 3, secret)
    task_url = f"http://testserver/fhir/r4/Task/{rid}"
    assert [summary(b) for b in bundles] == [
        ("handshake", "0", None),
        ("event-notification", "1", task_url),
        ("event-notification", "2", task_url),
    ]


def test_partner_refers_through_rest_clinic_follows_through_fhir(
    worker, hook, sender, receiver, receiver_org, service, partnership
):
    from tests.referrals.conftest import ensure_taxonomy

    ensure_taxonomy()
    secret = subscribe(receiver, hook, f"Task?owner=Organization/{receiver_org.pk}")

    created = sender.post(
        "/api/v1/referrals", referral_payload(receiver_org, service), format="json"
    )
    assert created.status_code == 201, created.content
    rid = created.json()["id"]

    handshake, new = notifications(hook, 2, secret)
    assert summary(handshake)[0] == "handshake"
    assert summary(new) == ("event-notification", "1", f"http://testserver/fhir/r4/Task/{rid}")
    assert new["entry"][1]["request"] == {"method": "POST", "url": f"Task/{rid}"}

    # The clinic reads what the notification named, and works the Task through FHIR.
    task = get(receiver, f"/Task/{rid}").json()
    assert task["status"] == "requested"
    request = get(receiver, f"/ServiceRequest/{rid}").json()
    assert request["contained"][0]["name"][0]["text"] == "Mia"
    received = [
        {"op": "replace", "path": "/businessStatus", "value": {"coding": [{"system": codes.REFERRAL_STATUS, "code": "received"}]}}
    ]  # fmt: skip
    assert patch(receiver, f"/Task/{rid}", received, HTTP_IF_MATCH='W/"1"').status_code == 200
    accepted = [{"op": "replace", "path": "/status", "value": "accepted"}]
    assert patch(receiver, f"/Task/{rid}", accepted, HTTP_IF_MATCH='W/"2"').status_code == 200

    # The sender sees it through REST; the clinic was told of each change.
    assert sender.get(f"/api/v1/referrals/{rid}").json()["referral"]["status"] == "accepted"
    events = notifications(hook, 4, secret)[2:]
    assert [summary(b)[:2] for b in events] == [
        ("event-notification", "2"),
        ("event-notification", "3"),
    ]
    deadline = time.time() + 10
    while WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).exists():
        assert time.time() < deadline, "every delivery recorded as succeeded"
        time.sleep(0.1)
