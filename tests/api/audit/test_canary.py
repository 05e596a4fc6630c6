"""Logs and queues hold no personal data (issue 6): a canary string in every personal field,
note and decline note is driven through the API, the Celery tasks and the webhooks, then
looked for in the application logs, the Celery messages, the webhook bodies, the outbox, the
audit trail and the disclosure log."""

import io
import json
import logging
from datetime import timedelta

import pytest
from celery.signals import before_task_publish
from django.utils import timezone

from api.audit.models import AuditEntry, Disclosure
from api.logging import JSONFormatter, RequestIDFilter
from api.models import Event
from api.tasks import retention
from api.webhooks import services as webhooks
from api.webhooks.models import WebhookDelivery
from api.webhooks.tasks import deliver
from partners.models import Service
from referrals.models import Consent, Referral
from referrals.tasks import destroy_expired_consents
from tests.api.webhooks.receiver import Receiver
from tests.referrals.conftest import active_partnership, referral_payload

pytestmark = pytest.mark.django_db

CANARY = "Canary-5c1e-Dandara-Oyelaran"


@pytest.fixture
def app_log():
    """The application's log output, formatted as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(RequestIDFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


@pytest.fixture
def celery_messages():
    published = []

    def capture(sender=None, body=None, headers=None, routing_key=None, **kwargs):
        published.append(json.dumps([sender, body, headers, routing_key], default=str))

    before_task_publish.connect(capture, weak=False)
    yield published
    before_task_publish.disconnect(capture)


def canary_payload(receiver, service):
    body = referral_payload(receiver, service)
    body["person"]["name"] = CANARY
    body["safe_contact"]["instructions"] = f"Ask for {CANARY}"
    body["safe_contact"]["code_word"] = CANARY
    body["contact"] = {"handle": CANARY, "email": f"{CANARY.lower()}@example.org"}
    body["reason"] = body["health"] = body["legal"] = CANARY
    return body


def test_canary_reaches_none_of_the_logs_queues_webhooks_or_trails(
    api_client_for,
    make_organisation,
    app_log,
    celery_messages,
    django_capture_on_commit_callbacks,
):
    sender_org = make_organisation("Sender collective", kind="sex_worker_led")
    receiver_org = make_organisation("Receiver clinic")
    active_partnership(sender_org, receiver_org)
    service = Service.objects.create(organisation=receiver_org, name="Clinic")
    sender, receiver = api_client_for(sender_org), api_client_for(receiver_org)
    with Receiver() as hooks:
        for organisation in (sender_org, receiver_org):
            webhooks.endpoint_create(organisation=organisation, url=hooks.url, event_types=["*"])
        with django_capture_on_commit_callbacks(execute=True):
            first = sender.post("/api/v1/referrals", canary_payload(receiver_org, service))
            second = sender.post("/api/v1/referrals", canary_payload(receiver_org, service))
            assert first.status_code == second.status_code == 201
            first, second = first.json(), second.json()
            detail = receiver.get(f"/api/v1/referrals/{first['id']}")
            assert CANARY in detail.content.decode()  # the canary is really there to find
            receiver.get(f"/api/v1/referrals/claim/{first['claim_code']}")
            for client in (sender, receiver):
                notes = client.post(
                    f"/api/v1/referrals/{first['id']}/notes", {"text": CANARY}, format="json"
                )
                assert notes.status_code == 201
            assert CANARY in receiver.get(f"/api/v1/referrals/{first['id']}/notes").content.decode()
            etag = receiver.get(f"/api/v1/referrals/{second['id']}")["ETag"]
            received = receiver.post(
                f"/api/v1/referrals/{second['id']}/receive", {}, HTTP_IF_MATCH=etag
            )
            assert received.status_code == 200
            declined = receiver.post(
                f"/api/v1/referrals/{second['id']}/decline",
                {"reason": "no_capacity", "note": CANARY},
                HTTP_IF_MATCH=received["ETag"],
            )
            assert declined.status_code == 200
            revoked = sender.post(f"/api/v1/referrals/{first['id']}/consent/revoke", {})
            assert revoked.status_code == 200
            # The declined referral closed long ago and its consent lapsed: the scheduled
            # tasks destroy what is left.
            Referral.objects.filter(pk=second["id"]).update(closed=timezone.now() - timedelta(60))
            Consent.objects.filter(referral_id=second["id"]).update(
                expires_at=timezone.now() - timedelta(1)
            )
            destroy_expired_consents.apply()
            retention.apply(("referral_personal_data",))
        for delivery in WebhookDelivery.objects.all():
            deliver.apply((str(delivery.pk),))
        bodies = hooks.wait_for(WebhookDelivery.objects.count())

    places = {
        "application logs": app_log.getvalue(),
        "Celery messages": "\n".join(celery_messages),
        "webhook bodies": "\n".join(r.body.decode() + json.dumps(r.headers) for r in bodies),
        "outbox events": json.dumps(list(Event.objects.values()), default=str),
        "audit trail": json.dumps(list(AuditEntry.objects.values()), default=str),
        "disclosure log": json.dumps(list(Disclosure.objects.values()), default=str),
    }
    for place, text in places.items():
        assert text, f"nothing captured from the {place}: the search would prove nothing"
        for needle in (CANARY, CANARY.lower()):
            assert needle not in text, f"personal data found in the {place}"
    assert len(bodies) >= 6
    assert Disclosure.objects.count() == 4  # two details, the claim code, the notes
    assert AuditEntry.objects.filter(action__startswith="destroy personal data").count() == 2
