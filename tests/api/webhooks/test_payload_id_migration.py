"""api 0011 renames the ids of the events already in the outbox and of the endpoints' data
filters, so a delivery or a FHIR Subscription made before it reads like one made after."""

import json
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from api.models import Event
from api.webhooks.models import WebhookEndpoint

BEFORE = [("api", "0010_audit_lock_tail")]


def payloads(after: bool) -> dict:
    """The sample events' data as stored before api 0011 (after=False) or as it reads after it:
    each renamed key is written `key(before, after)`."""

    def key(old: str, new: str) -> str:
        return new if after else old

    service = key("id", "service_id")
    return {
        "referral.note_added": {
            key("referral", "referral_id"): "r",
            key("sender", "sender_id"): "s",
            key("receiver", "receiver_id"): "v",
            "status": "accepted",
            "at": "2026-11-28T10:00:00Z",
            key("note", "note_id"): "n",
        },
        "ping": {key("webhook_endpoint", "webhook_endpoint_id"): "w"},
        "capacity.updated": {
            "organisation_id": "o",
            "services": [{service: "a", "version": 1}, {service: "b", "version": 2}],
        },
        "partnership.changed": {"partnership_id": "p", "status": "active"},
    }


def migrate(targets) -> None:
    MigrationExecutor(connection).migrate(targets)


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_stored_events_and_filters_take_the_new_keys(make_organisation):
    organisation = make_organisation()
    endpoint = WebhookEndpoint.objects.create(
        organisation=organisation, url="https://partner.example.org/hooks", secret="whsec_x"
    )
    migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            for event_type, data in payloads(after=False).items():
                cursor.execute(
                    "INSERT INTO api_event (id, type, data, created, organisation_id) "
                    "VALUES (%s, %s, %s::jsonb, %s, %s)",
                    [uuid.uuid4(), event_type, json.dumps(data), timezone.now(), organisation.pk],
                )
            cursor.execute(
                "UPDATE api_webhookendpoint SET data_filter = %s::jsonb WHERE id = %s",
                [json.dumps({"receiver": ["v"], "status": ["accepted"]}), endpoint.pk],
            )
    finally:
        migrate(latest())
    assert {event.type: event.data for event in Event.objects.all()} == payloads(after=True)
    endpoint.refresh_from_db()
    assert endpoint.data_filter == {"receiver_id": ["v"], "status": ["accepted"]}
