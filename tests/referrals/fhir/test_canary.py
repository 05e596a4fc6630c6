"""A canary string in every personal field of a referral made through FHIR appears only in the
parties' authorised reads of the ServiceRequest and Consent: never in a Task, a search, an
answer to anyone else, a Subscription notification (delivered by a real worker), the API's or
the worker's logs, or a dump of the database."""

import json
import time
import uuid

import pytest

from api.webhooks.models import DeliveryStatus, WebhookDelivery
from referrals.fhir import codes
from tests.api.webhooks.receiver import Receiver
from tests.referrals.fhir.conftest import get, patch, post, put, transaction_bundle
from tests.referrals.fhir.test_subscriptions import subscription_body
from tests.referrals.test_canary import captured_logs, pg_dump  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def soaked(canary: str):
    """Every personal element of the transaction carries the canary."""

    def service_request(resource):
        patient = resource["contained"][0]
        patient["name"] = [{"use": "anonymous", "text": canary}]
        safe, pronouns = patient["extension"][0], patient["extension"][1]
        for part in safe["extension"]:
            if "valueString" in part:
                part["valueString"] = canary
        pronouns["extension"][0]["valueCodeableConcept"]["text"] = canary
        patient["telecom"] = [
            {"system": "phone", "value": canary},
            {"system": "email", "value": f"{canary}@example.org"},
            {"system": "other", "value": canary},
        ]
        resource["reasonCode"] = [{"text": canary}]
        resource["extension"] = [
            {"url": codes.HEALTH_DETAILS, "valueString": canary},
            {"url": codes.LEGAL_DETAILS, "valueString": canary},
        ]

    def consent(resource):
        for extension in resource["extension"]:
            if extension["url"] == codes.RECORDED_BY:
                extension["valueString"] = canary
        resource["extension"].append({"url": codes.PURPOSE_NOTE, "valueString": canary})

    return {"ServiceRequest": service_request, "Consent": consent}


def test_personal_data_only_in_authorised_reads(
    worker, tmp_path, captured_logs, sender, receiver, stranger, api_client_for,  # noqa: F811
    sender_org, receiver_org, service, partnership,
):  # fmt: skip
    from tests.referrals.conftest import ensure_taxonomy

    ensure_taxonomy()
    canary = "cnry" + uuid.uuid4().hex[:16]
    with Receiver() as hook:
        for client, filters in (
            (receiver, f"Task?owner=Organization/{receiver_org.pk}"),
            (sender, ""),
        ):
            body = subscription_body(hook.url, *([filters] if filters else []), heartbeat=60)
            assert post(client, "/Subscription", body).status_code == 201
        created = post(
            sender, "", transaction_bundle(sender_org, receiver_org, service, **soaked(canary)),
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        )  # fmt: skip
        assert created.status_code == 200, created.content
        assert canary not in created.content.decode()
        rid = created.json()["entry"][1]["resource"]["id"]

        received = [{"op": "replace", "path": "/businessStatus",
                     "value": {"coding": [{"system": codes.REFERRAL_STATUS, "code": "received"}]}}]  # fmt: skip
        assert patch(receiver, f"/Task/{rid}", received, HTTP_IF_MATCH='W/"1"').status_code == 200
        task = get(receiver, f"/Task/{rid}").json()
        task["status"] = "rejected"
        task["statusReason"] = {
            "coding": [{"system": codes.DECLINE_REASON, "code": "other"}],
            "text": canary,
        }
        declined = put(receiver, f"/Task/{rid}", task, HTTP_IF_MATCH='W/"2"')
        assert declined.status_code == 200 and canary not in declined.content.decode()

        # The parties' authorised reads carry it...
        for client in (sender, receiver):
            assert canary in get(client, f"/ServiceRequest/{rid}").content.decode()
            assert canary in get(client, f"/Consent/{rid}").content.decode()
        # ...and nothing else does.
        directory_only = api_client_for(receiver_org, ["directory:read"])
        quiet = [
            get(receiver, f"/Task/{rid}"), get(sender, f"/Task/{rid}"),
            get(receiver, "/Task"), get(receiver, "/ServiceRequest"), get(receiver, "/Consent"),
            get(stranger, f"/ServiceRequest/{rid}"), get(stranger, f"/Consent/{rid}"),
            get(directory_only, f"/ServiceRequest/{rid}"), get(receiver, "/Subscription"),
        ]  # fmt: skip
        assert [r.status_code for r in quiet] == [200] * 5 + [404, 404, 403, 200]
        for response in quiet:
            assert canary not in response.content.decode()

        # Notifications: the handshakes and the Task's events, all delivered, none with it.
        deadline = time.time() + 60
        while (
            WebhookDelivery.objects.count() < 5
            or WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).exists()
        ):
            assert time.time() < deadline, list(
                WebhookDelivery.objects.values("status", "sequence")
            )
            time.sleep(0.2)
        bodies = [got.body.decode() for got in hook.received]
        assert len(bodies) >= 5
        assert all(canary not in body for body in bodies)
        assert any(f"Task/{rid}" in body for body in bodies)

    logs = "\n".join(captured_logs.lines) + (tmp_path / "worker.log").read_text()
    assert "webhooks.deliver" in logs, "the worker's log must have been read"
    assert "api.access" in logs
    assert canary not in logs
    dump = pg_dump()
    assert canary not in dump and canary.encode().hex() not in dump
    assert json.dumps(rid)[1:-1] in dump
