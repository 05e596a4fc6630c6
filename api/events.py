"""Emit events into the outbox. Call inside the transaction that makes the change, so the event
exists if and only if the change does. Delivery (webhooks) picks them up on commit."""

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from api.models import Event

EVENT_TYPES = (
    "referral.received",
    "referral.status_changed",
    "referral.note_added",
    "referral.consent_revoked",
    "referral.consent_renewed",
    "referral.consent_expiring",
    "referral.safe_contact_changed",
    "capacity.updated",
    "partnership.changed",
    "directory.import.finished",
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


def insert_sql(*, only_if: str = "") -> str:
    """The outbox INSERT, with `Emission.params()` bound. `only_if` is a SQL condition that
    must hold for any row to be inserted: a caller that writes its change in one statement (a
    new referral's CTE) joins its event to it, a round trip fewer."""
    conditions = [wanted for _, wanted in _subscribers]
    pending = "true" if None in conditions else " OR ".join(conditions) or "false"
    # Only the subscribers' fixed conditions and the caller's fixed `only_if` are interpolated;
    # every value is bound.
    return f"""
INSERT INTO {Event._meta.db_table} (id, type, organisation_id, data, created, dispatched_at)
SELECT e.id, %(event_type)s, e.organisation_id, %(event_data)s::jsonb, %(event_now)s,
       CASE WHEN {pending} THEN NULL ELSE %(event_now)s END
FROM unnest(%(event_ids)s::uuid[], %(event_organisations)s::uuid[]) AS e(id, organisation_id)
{f"WHERE {only_if}" if only_if else ""}
RETURNING id, dispatched_at"""  # noqa: S608


@dataclass
class Emission:
    """Events about to be inserted (by `emit`, or inside a caller's statement with
    `insert_sql`); `stored` is told what the database inserted."""

    type: str
    organisations: list
    data: dict
    now: datetime
    ids: list[uuid.UUID] = field(default_factory=list)

    def params(self) -> dict:
        return {
            "event_type": self.type,
            "event_data": json.dumps(self.data, cls=DjangoJSONEncoder),
            "event_now": self.now,
            "event_ids": self.ids,
            "event_organisations": [organisation.pk for organisation in self.organisations],
        }

    def stored(self, dispatched: dict) -> None:
        """Given each id's `dispatched_at` as inserted: the subscribers hear of the pending
        events on commit."""
        pending = [event_id for event_id in self.ids if dispatched[event_id] is None]
        if pending:
            for callback, _ in _subscribers:
                transaction.on_commit(lambda cb=callback: cb(pending))


def emission(event_type: str, *, organisations: Iterable, data: dict) -> Emission:
    if event_type not in EVENT_TYPES and event_type != "ping":
        raise ValueError(f"unknown event type {event_type!r}")
    organisations = list(organisations)
    return Emission(
        type=event_type,
        organisations=organisations,
        data=data,
        now=timezone.now(),
        ids=[uuid.uuid4() for _ in organisations],
    )


def emit(event_type: str, *, organisations: Iterable, data: dict) -> list[Event]:
    prepared = emission(event_type, organisations=organisations, data=data)
    if not prepared.organisations:
        return []
    with connection.cursor() as cursor:
        cursor.execute(insert_sql(), prepared.params())
        dispatched = dict(cursor.fetchall())
    prepared.stored(dispatched)
    events = []
    for event_id, organisation in zip(prepared.ids, prepared.organisations, strict=True):
        event = Event(
            id=event_id,
            type=event_type,
            organisation=organisation,
            data=data,
            created=prepared.now,
            dispatched_at=dispatched[event_id],
        )
        event._state.adding = False
        events.append(event)
    return events
