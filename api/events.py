"""Emit events into the outbox. Call inside the transaction that makes the change, so the event
exists if and only if the change does. Delivery (webhooks) picks them up on commit."""

from collections.abc import Iterable

from django.db import transaction

from api.models import Event

EVENT_TYPES = (
    "referral.received",
    "referral.status_changed",
    "referral.note_added",
    "referral.consent_revoked",
    "capacity.updated",
    "partnership.changed",
)

_subscribers = []


def on_event_committed(callback):
    """Register a function called with the new event ids after the transaction commits."""
    _subscribers.append(callback)
    return callback


def emit(event_type: str, *, organisations: Iterable, data: dict) -> list[Event]:
    if event_type not in EVENT_TYPES and event_type != "ping":
        raise ValueError(f"unknown event type {event_type!r}")
    events = Event.objects.bulk_create(
        [Event(type=event_type, organisation=org, data=data) for org in organisations]
    )
    ids = [event.id for event in events]
    for callback in _subscribers:
        transaction.on_commit(lambda cb=callback: cb(ids))
    return events
