"""Every resource type the facade emits, fetched from a live server over HTTP, parses as its
`fhir.resources` R4B model; malformed input is refused with a 400 or 422 OperationOutcome
that is itself valid. (docs/FHIR.md lists where R4B and R4 differ for these resources.)"""

import json

import pytest
import requests

from api.webhooks import services as webhooks
from api.webhooks.models import WebhookDelivery
from partners.services import service_create
from referrals.fhir import codes
from referrals.fhir.structure import model
from tests.referrals.fhir.conftest import transaction_bundle
from tests.referrals.fhir.test_subscriptions import subscription_body

pytestmark = pytest.mark.django_db(transaction=True)
JSON = {"Content-Type": "application/fhir+json"}


def valid(resource: dict) -> dict:
    model(resource["resourceType"]).model_validate(resource)
    for contained in resource.get("contained", []):
        model(contained["resourceType"]).model_validate(contained)
    for entry in resource.get("entry", []):
        if "resource" in entry:
            valid(entry["resource"])
    return resource


@pytest.fixture
def live(live_server, sender, receiver):
    def call(client, method, path, body=None, content_type="application/fhir+json", **headers):
        token = client._credentials["HTTP_AUTHORIZATION"]
        response = requests.request(
            method,
            f"{live_server.url}/fhir/r4{path}",
            data=json.dumps(body) if body is not None else None,
            headers={"Authorization": token, "Content-Type": content_type, **headers},
            timeout=10,
        )
        assert response.headers["Content-Type"] == "application/fhir+json"
        return response

    return call


def test_every_resource_type_emitted_is_valid_r4b(
    live, sender, receiver, sender_org, receiver_org, service, partnership
):
    from tests.referrals.conftest import ensure_taxonomy

    ensure_taxonomy()
    service_create(organisation=receiver_org, name="Testing", taxonomy=["sti-testing"],
                   capacity={"available": 2, "maximum": 5, "unit": "places", "accepting_referrals": "limited"})  # fmt: skip
    seen = set()

    def fetch(client, method, path, body=None, status=200, **headers):
        response = live(client, method, path, body, **headers)
        assert response.status_code == status, response.text
        resource = valid(response.json())
        seen.add(resource["resourceType"])
        for entry in resource.get("entry", []):
            if "resource" in entry:
                seen.add(entry["resource"]["resourceType"])
        return resource

    fetch(sender, "GET", "/metadata")
    created = fetch(sender, "POST", "", transaction_bundle(sender_org, receiver_org, service))
    rid = created["entry"][1]["response"]["location"].rpartition("/")[2]
    for path in (f"/Task/{rid}", f"/ServiceRequest/{rid}", f"/Consent/{rid}", "/Task", "/ServiceRequest",
                 "/Consent", "/HealthcareService", f"/HealthcareService/{service.pk}", "/Organization",
                 f"/Organization/{receiver_org.pk}"):  # fmt: skip
        fetch(receiver, "GET", path)
    subscription = fetch(
        receiver, "POST", "/Subscription", subscription_body("http://127.0.0.1:9/h"), status=201
    )
    fetch(receiver, "GET", f"/Subscription/{subscription['id']}")
    fetch(receiver, "GET", "/Subscription")
    patch = [{"op": "replace", "path": "/businessStatus",
              "value": {"coding": [{"system": codes.REFERRAL_STATUS, "code": "received"}]}}]  # fmt: skip
    response = live(
        receiver,
        "PATCH",
        f"/Task/{rid}",
        patch,
        "application/json-patch+json",
        **{"If-Match": 'W/"1"'},
    )
    assert response.status_code == 200, response.text
    valid(response.json())
    fetch(sender, "PATCH", f"/Consent/{rid}", [{"op": "replace", "path": "/status", "value": "inactive"}],
          content_type="application/json-patch+json")  # fmt: skip
    fetch(receiver, "GET", f"/Consent/{rid}", status=410)
    fetch(receiver, "GET", "/Patient", status=404)
    # The notifications the subscription's deliveries carry.
    for delivery in WebhookDelivery.objects.filter(endpoint_id=subscription["id"]).select_related(
        "endpoint", "event"
    ):
        body, _ = webhooks.rendered(delivery)
        bundle = valid(json.loads(body))
        seen.add(bundle["entry"][0]["resource"]["resourceType"])
    assert seen >= {
        "CapabilityStatement", "Bundle", "Task", "ServiceRequest", "Consent", "HealthcareService",
        "Organization", "Subscription", "OperationOutcome", "Parameters",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("", {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {"resourceType": "Task", "status": 7}}]}, 400),
        ("", {"resourceType": "Bundle", "type": "transaction", "timestamp": "not-a-time"}, 400),
        ("", {"resourceType": "Nonsense"}, 400),
        ("", {"resourceType": "Bundle", "type": "searchset"}, 422),
        ("/Subscription", {"resourceType": "Subscription", "status": "requested"}, 400),
        ("/Subscription", {"resourceType": "Subscription", "status": "requested", "reason": "x",
                           "criteria": "Task?status=requested", "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/h"}}, 422),
    ],
)  # fmt: skip
def test_malformed_input_is_a_valid_400_or_422_outcome(live, sender, path, body, status):
    response = live(sender, "POST", path, body)
    assert response.status_code == status, response.text
    outcome = valid(response.json())
    assert outcome["resourceType"] == "OperationOutcome"
