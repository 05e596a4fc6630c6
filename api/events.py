"""Emit events into the outbox. Call inside the transaction that makes the change, so the event
exists if and only if the change does. Delivery (webhooks) picks them up on commit."""

import json
import uuid
from collections.abc import Iterable

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from api.models import Event

EVENT_TYPES = (
    "referral.received",
    "referral.status_changed",
    "referral.note_added",
    "referral.consent_revoked",
    "capacity.updated",
    "partnership.changed",
)

_subscribers: list = []


def on_event_committed(callback, *, wanted: str | None = None):
    """Register a function called with the new event ids after the transaction commits.

    `wanted` is a SQL condition on `e.organisation_id` saying whether the subscriber could want
    an event of that organisation at all (webhooks: it has an endpoint). An event no subscriber
    wants is stored already dispatched and costs no hook: most organisations have no webhook
    endpoint, and the hook is a transaction of its own after every write."""
    _subscribers.append((callback, wanted))
    return callback


def _insert_sql() -> str:
    conditions = [wanted for _, wanted in _subscribers]
    pending = "true" if None in conditions else " OR ".join(conditions) or "false"
    # Only the subscribers' fixed conditions are interpolated; every value is bound.
    return f"""
INSERT INTO {Event._meta.db_table} (id, type, organisation_id, data, created, dispatched_at)
SELECT e.id, %(type)s, e.organisation_id, %(data)s::jsonb, %(now)s,
       CASE WHEN {pending} THEN NULL ELSE %(now)s END
FROM unnest(%(ids)s::uuid[], %(organisations)s::uuid[]) AS e(id, organisation_id)
RETURNING id, dispatched_at"""  # noqa: S608


def emit(event_type: str, *, organisations: Iterable, data: dict) -> list[Event]:
    if event_type not in EVENT_TYPES and event_type != "ping":
        raise ValueError(f"unknown event type {event_type!r}")
    organisations = list(organisations)
    if not organisations:
        return []
    now = timezone.now()
    ids = [uuid.uuid4() for _ in organisations]
    with connection.cursor() as cursor:
        cursor.execute(
            _insert_sql(),
            {
                "type": event_type,
                "data": json.dumps(data, cls=DjangoJSONEncoder),
                "now": now,
                "ids": ids,
                "organisations": [organisation.pk for organisation in organisations],
            },
        )
        dispatched = dict(cursor.fetchall())
    events = []
    for event_id, organisation in zip(ids, organisations, strict=True):
        event = Event(
            id=event_id,
            type=event_type,
            organisation=organisation,
            data=data,
            created=now,
            dispatched_at=dispatched[event_id],
        )
        event._state.adding = False
        events.append(event)
    pending = [event.id for event in events if event.dispatched_at is None]
    if pending:
        for callback, _ in _subscribers:
            transaction.on_commit(lambda cb=callback: cb(pending))
    return events
