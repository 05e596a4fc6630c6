"""Webhook rules: endpoints, fan-out of outbox events into deliveries, one attempt at a
delivery, and the retry schedule. Tasks (tasks.py) are thin wrappers over these."""

import contextlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from api.errors import Conflict, InvalidInput
from api.events import EVENT_TYPES
from api.models import Event
from api.webhooks import delivery as wire
from api.webhooks.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
)

log = logging.getLogger(__name__)

# Standard Webhooks schedule: the first attempt at once, then these waits after each failure
# (about three days in all). Ten attempts, then the delivery is given up.
RETRY_DELAYS = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600)
JITTER = 0.1
# A Retry-After longer than the longest step is not honoured past it.
MAX_RETRY_AFTER = RETRY_DELAYS[-1]
# Waits up to this long (the 5 s step with its jitter) ride a Celery countdown; longer ones
# are rows the sweeper picks up, because a Redis broker redelivers tasks held past its
# visibility timeout.
COUNTDOWN_LIMIT = 10
# Celery's ETA timer may fire a little early; a countdown task that finds its delivery due in
# less than this takes it rather than leaving it to the sweeper.
EARLY_TOLERANCE = timedelta(seconds=1)
# How long a claimed delivery is leased to the worker attempting it; longer than the total
# HTTP timeout, so a live attempt is never taken over.
LEASE = timedelta(seconds=60)
FAILING_LIMIT = timedelta(days=3)
SECRET_OVERLAP = timedelta(hours=24)
WILDCARD = "*"
SUBSCRIBABLE = (*EVENT_TYPES, WILDCARD)


def retry_delay(attempts: int, *, retry_after: float | None = None, rng=random) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones, or None to give up.
    Jitter (±10 %) spreads retries so a receiver coming back is not hit by a thundering herd."""
    if attempts < 1 or attempts > len(RETRY_DELAYS):
        return None
    base = RETRY_DELAYS[attempts - 1]
    delay = base * rng.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def is_retryable(outcome: wire.Outcome) -> bool:
    """Timeouts, connection errors, 429 and 5xx are worth another try; a redirect, a refused
    address or any other answer is not."""
    if outcome.status_code is None:
        return not outcome.error.startswith("refused")
    return outcome.status_code == 429 or outcome.status_code >= 500


# --- endpoints -------------------------------------------------------------------------------


def _validate_url(url: str) -> None:
    try:
        wire.check_url(url)
    except wire.URLRefused as exc:
        raise InvalidInput(str(exc), errors=[{"pointer": "/url", "detail": str(exc)}]) from exc


def _validate_event_types(event_types: list[str]) -> list[str]:
    unknown = [t for t in event_types if t not in SUBSCRIBABLE]
    if unknown or not event_types:
        detail = (
            f"Unknown event types: {', '.join(unknown)}."
            if unknown
            else "Name at least one event type, or '*' for all."
        )
        raise InvalidInput(detail, errors=[{"pointer": "/event_types", "detail": detail}])
    return sorted(set(event_types))


def endpoint_create(
    *, organisation, url: str, event_types: list[str], description: str = ""
) -> WebhookEndpoint:
    _validate_url(url)
    return WebhookEndpoint.objects.create(
        organisation=organisation,
        url=url,
        event_types=_validate_event_types(event_types),
        description=description,
        secret=wire.new_secret(),
    )


def endpoint_update(*, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    """Change URL, event types, description or `active`. Re-enabling clears the reason and
    sends everything that waited while the endpoint was off."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if "url" in changes:
            _validate_url(changes["url"])
            endpoint.url = changes["url"]
        if "event_types" in changes:
            endpoint.event_types = _validate_event_types(changes["event_types"])
        if "description" in changes:
            endpoint.description = changes["description"]
        reenabled = False
        if "active" in changes and changes["active"] != endpoint.active:
            endpoint.active = changes["active"]
            if endpoint.active:
                reenabled = True
                endpoint.disabled_reason = ""
                endpoint.disabled_at = None
                endpoint.failing_since = None
            else:
                endpoint.disabled_reason = "Disabled by its owner."
                endpoint.disabled_at = timezone.now()
        endpoint.save()
        if reenabled:
            ids = list(
                WebhookDelivery.objects.filter(
                    endpoint=endpoint, status=DeliveryStatus.PENDING
                ).values_list("id", flat=True)
            )
            WebhookDelivery.objects.filter(id__in=ids).update(
                attempts=0, next_attempt_at=timezone.now()
            )
            transaction.on_commit(lambda: publish(ids))
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret; the old one keeps signing for 24 hours beside it."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires = timezone.now() + SECRET_OVERLAP
        endpoint.secret = wire.new_secret()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires"])
    return endpoint


def endpoint_disable(*, endpoint_id, reason: str) -> None:
    WebhookEndpoint.objects.filter(id=endpoint_id, active=True).update(
        active=False, disabled_reason=reason[:300], disabled_at=timezone.now()
    )


def endpoint_ping(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `ping` event for this endpoint alone, delivered like any other."""
    if not endpoint.active:
        raise Conflict(
            "The endpoint is disabled; re-enable it (PATCH active=true) before pinging.",
            disabled_reason=endpoint.disabled_reason,
        )
    with transaction.atomic():
        now = timezone.now()
        event = Event.objects.create(
            type="ping",
            organisation_id=endpoint.organisation_id,
            data={"webhook_endpoint": str(endpoint.id)},
            dispatched_at=now,
        )
        sequence = _take_sequences(endpoint.id, 1)
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event=event, sequence=sequence, next_attempt_at=now
        )
        transaction.on_commit(lambda: publish([delivery.id]))
    return delivery


# --- fan-out ---------------------------------------------------------------------------------


def _take_sequences(endpoint_id, count: int) -> int:
    """Reserve `count` sequence numbers for one endpoint in one statement; returns the first.
    The row lock it takes is held only until the fan-out commits."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {WebhookEndpoint._meta.db_table} SET sequence = sequence + %s "  # noqa: S608
            "WHERE id = %s RETURNING sequence",
            [count, endpoint_id],
        )
        (last,) = cursor.fetchone()
    return last - count + 1


# Claims the events and finds the endpoints of their organisations in one statement. The
# set_config makes this transaction's commit skip the WAL flush wait: it only derives rows from
# committed events, and if a crash loses it the events are undispatched again and the sweeper
# fans them out anew; the flush is most of the time the endpoint's sequence lock is held.
_DISPATCH_SQL = """
WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)),
claimed AS (
  UPDATE {event} SET dispatched_at = %(now)s
  WHERE id = ANY(%(ids)s) AND dispatched_at IS NULL
  RETURNING id, type, organisation_id, created
)
SELECT c.id, c.type, c.created, e.id, e.event_types, e.active
FROM claimed c CROSS JOIN relaxed
LEFT JOIN {endpoint} e ON e.organisation_id = c.organisation_id
ORDER BY c.created, c.id
"""

# Reserves the endpoint's next sequence numbers and writes its deliveries in one statement.
_DELIVERIES_SQL = """
WITH reserved AS (
  UPDATE {endpoint} SET sequence = sequence + %(count)s WHERE id = %(endpoint)s::uuid
  RETURNING sequence - %(count)s AS base
)
INSERT INTO {delivery} (id, endpoint_id, event_id, sequence, status, attempts, next_attempt_at,
  created)
SELECT d.id, %(endpoint)s::uuid, d.event_id, reserved.base + d.n, 'pending', 0, %(now)s, %(now)s
FROM reserved, unnest(%(ids)s::uuid[], %(events)s::uuid[]) WITH ORDINALITY AS d(id, event_id, n)
"""


def events_dispatch(event_ids: Iterable) -> list:
    """Create the deliveries for events not yet fanned out, in one transaction, and return the
    ids of those that can be sent now. Safe to run twice: a claimed event is skipped. Events
    of a disabled endpoint get their deliveries too, to be sent when it is re-enabled. Runs
    after every API write that emits, hence two statements and no ORM."""
    event_ids = list(event_ids)
    if not event_ids:
        return []
    tables = {
        "event": Event._meta.db_table,
        "endpoint": WebhookEndpoint._meta.db_table,
        "delivery": WebhookDelivery._meta.db_table,
    }
    sendable = []
    with transaction.atomic(), connection.cursor() as cursor:
        now = timezone.now()
        cursor.execute(_DISPATCH_SQL.format(**tables), {"now": now, "ids": event_ids})
        wanted: dict = {}
        for event_id, event_type, _, endpoint_id, event_types, active in cursor.fetchall():
            if endpoint_id is not None and ("*" in event_types or event_type in event_types):
                wanted.setdefault((str(endpoint_id), active), []).append(event_id)
        for (endpoint_id, active), events in sorted(wanted.items()):
            ids = [uuid.uuid4() for _ in events]
            cursor.execute(
                _DELIVERIES_SQL.format(**tables),
                {"endpoint": endpoint_id, "count": len(events), "now": now, "ids": ids,
                 "events": events},
            )  # fmt: skip
            if active:
                sendable.extend(ids)
    return sendable


def on_events_committed(event_ids) -> None:
    """The outbox hook (registered in api/apps.py): fan out and queue at once. Any failure here
    is logged and left to the sweeper; the API request that emitted must not fail after its
    transaction committed."""
    try:
        publish(events_dispatch(event_ids))
    except Exception:
        log.exception("webhook fan-out failed; the sweeper will retry", extra={"events": 1})


# After a failed publish this process stops trying for a few seconds: during an outage each
# API request would otherwise pay a connect attempt, and the sweeper catches up anyway.
BROKER_BACKOFF = 5.0
_broker = threading.local()


def _publisher_connection():
    """One broker connection per thread, opened with no connect retries: kombu's default is
    to retry for broker_connection_timeout on every publish, which a request must not wait."""
    connection = getattr(_broker, "connection", None)
    if connection is None:
        from api.webhooks.tasks import deliver

        app = deliver.app
        options = {**(app.conf.broker_transport_options or {}), "max_retries": 0}
        connection = app.connection_for_write(transport_options=options)
        _broker.connection = connection
    return connection


def publish(delivery_ids: Iterable, countdown: float | None = None) -> int:
    """Queue an attempt per delivery. A broker that is down costs one fast failure, not one
    per delivery: the rows stay due and the sweeper queues them when the broker is back."""
    from api.webhooks.tasks import deliver

    delivery_ids = list(delivery_ids)
    if not delivery_ids or time.monotonic() < getattr(_broker, "down_until", 0.0):
        return 0
    sent = 0
    try:
        connection = _publisher_connection()
        for delivery_id in delivery_ids:
            deliver.apply_async(
                (str(delivery_id),), countdown=countdown, retry=False, connection=connection
            )
            sent += 1
    except Exception as exc:
        log.warning(
            "broker unavailable, leaving %d deliveries to the sweeper: %s",
            len(delivery_ids) - sent,
            exc,
        )
        _broker.down_until = time.monotonic() + BROKER_BACKOFF
        connection = getattr(_broker, "connection", None)
        _broker.connection = None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.release()
    return sent


# --- attempts --------------------------------------------------------------------------------


def payload(delivery: WebhookDelivery) -> bytes:
    """Thin: type, ids, timestamps and links that the event carried. Never personal data; the
    receiver fetches details with its own token."""
    event = delivery.event
    body = {
        "type": event.type,
        "timestamp": event.created.isoformat().replace("+00:00", "Z"),
        "sequence": delivery.sequence,
        "data": {"id": str(event.id), **event.data},
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    live = [endpoint.secret]
    if endpoint.previous_secret and (
        endpoint.previous_secret_expires and endpoint.previous_secret_expires > now
    ):
        live.append(endpoint.previous_secret)
    return live


_CLAIM_SQL = """
UPDATE {delivery} d SET next_attempt_at = %(lease)s
FROM {endpoint} e, {event} v
WHERE d.id = %(id)s AND d.status = 'pending' AND d.next_attempt_at <= %(due)s
  AND e.id = d.endpoint_id AND e.active AND v.id = d.event_id
RETURNING d.sequence, d.attempts, d.created, e.id, e.organisation_id, e.url, e.secret,
  e.previous_secret, e.previous_secret_expires, e.failing_since, v.id, v.type, v.created, v.data
"""


def _claim(delivery_id) -> WebhookDelivery | None:
    """Lease a due delivery to this worker, or None if it is not due, done, its endpoint is off
    or another worker holds it (a duplicate task is then a harmless no-op). One statement
    that claims and reads, because this runs once per attempt."""
    now = timezone.now()
    sql = _CLAIM_SQL.format(
        delivery=WebhookDelivery._meta.db_table,
        endpoint=WebhookEndpoint._meta.db_table,
        event=Event._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"id": delivery_id, "lease": now + LEASE, "due": now + EARLY_TOLERANCE})
        row = cursor.fetchone()
    if row is None:
        return None
    (sequence, attempts, created, endpoint_id, organisation_id, url, secret, previous_secret,
     previous_expires, failing_since, event_id, event_type, event_created, data) = row  # fmt: skip
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        organisation_id=organisation_id,
        url=url,
        secret=secret,
        previous_secret=previous_secret,
        previous_secret_expires=previous_expires,
        failing_since=failing_since,
        active=True,
    )
    event = Event(
        id=event_id,
        type=event_type,
        organisation_id=organisation_id,
        created=event_created,
        data=json.loads(data) if isinstance(data, str) else data,
    )
    delivery = WebhookDelivery(
        id=delivery_id,
        endpoint=endpoint,
        event=event,
        sequence=sequence,
        attempts=attempts,
        status=DeliveryStatus.PENDING,
        next_attempt_at=now + LEASE,
        created=created,
    )
    delivery._state.adding = False
    return delivery


def delivery_attempt(delivery_id, *, post=None) -> WebhookDeliveryAttempt | None:
    """One attempt at one delivery: sign, POST, store what happened, schedule what comes next.
    Returns the stored attempt, or None when there was nothing to do."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    now = timezone.now()
    body = payload(delivery)
    timestamp = int(now.timestamp())
    msg_id = str(delivery.event_id)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": wire.signature_header(
            signing_secrets(endpoint, now), msg_id, timestamp, body
        ),
    }
    outcome = (post or wire.post)(endpoint.url, body, headers)
    return _record(delivery, outcome)


_SUCCESS_SQL = """
WITH attempt AS (
  INSERT INTO {attempt} (id, delivery_id, endpoint_id, created, status_code, latency_ms,
    succeeded, error, response_excerpt)
  VALUES (%(attempt)s, %(id)s, %(endpoint)s, %(now)s, %(status)s, %(latency)s, true, '',
    %(excerpt)s)
)
UPDATE {delivery} SET status = 'succeeded', attempts = attempts + 1, next_attempt_at = NULL,
  delivered_at = %(now)s
WHERE id = %(id)s
"""


def _record_success(delivery: WebhookDelivery, outcome: wire.Outcome) -> WebhookDeliveryAttempt:
    """The common case in one statement (the attempt row and the delivery's new state commit
    together, without a transaction's extra round trips)."""
    now = timezone.now()
    attempt = WebhookDeliveryAttempt(
        id=uuid.uuid4(),
        delivery=delivery,
        endpoint=delivery.endpoint,
        created=now,
        status_code=outcome.status_code,
        latency_ms=outcome.latency_ms,
        succeeded=True,
        response_excerpt=outcome.excerpt[:512],
    )
    sql = _SUCCESS_SQL.format(
        attempt=WebhookDeliveryAttempt._meta.db_table, delivery=WebhookDelivery._meta.db_table
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "attempt": attempt.id,
                "id": delivery.id,
                "endpoint": delivery.endpoint.id,
                "now": now,
                "status": outcome.status_code,
                "latency": outcome.latency_ms,
                "excerpt": attempt.response_excerpt,
            },
        )
    if delivery.endpoint.failing_since is not None:
        WebhookEndpoint.objects.filter(id=delivery.endpoint.id).update(failing_since=None)
    return attempt


def _record(delivery: WebhookDelivery, outcome: wire.Outcome) -> WebhookDeliveryAttempt:
    """Store the attempt and schedule what comes next: a retry, giving up, or disabling."""
    if outcome.succeeded:
        return _record_success(delivery, outcome)
    now = timezone.now()
    endpoint = delivery.endpoint
    countdown = None
    with transaction.atomic():
        attempt = WebhookDeliveryAttempt.objects.create(
            delivery=delivery,
            endpoint=endpoint,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            succeeded=outcome.succeeded,
            error=outcome.error[:500],
            response_excerpt=outcome.excerpt[:512],
        )
        delivery.attempts += 1
        delay = (
            retry_delay(delivery.attempts, retry_after=outcome.retry_after)
            if is_retryable(outcome)
            else None
        )
        if outcome.status_code == 410:
            # Gone: the receiver asks us to stop. The delivery waits for a re-enable.
            delivery.next_attempt_at = now
            endpoint_disable(
                endpoint_id=endpoint.id,
                reason="The receiver answered 410 Gone; re-enable to resume.",
            )
        elif delay is None:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            if delay <= COUNTDOWN_LIMIT:
                countdown = delay
        _note_failure(endpoint, now)
        delivery.save(update_fields=["status", "attempts", "next_attempt_at", "delivered_at"])
        if countdown is not None:
            transaction.on_commit(lambda: publish([delivery.id], countdown=countdown))
    return attempt


def _note_failure(endpoint: WebhookEndpoint, now: datetime) -> None:
    """Three days of nothing but failures disables the endpoint with a reason its owner sees."""
    WebhookEndpoint.objects.filter(id=endpoint.id, failing_since__isnull=True).update(
        failing_since=now
    )
    since = endpoint.failing_since or now
    if now - since >= FAILING_LIMIT:
        endpoint_disable(
            endpoint_id=endpoint.id,
            reason=(
                f"Every delivery failed from {since:%Y-%m-%d %H:%M} UTC for three days; "
                "re-enable to resume."
            ),
        )


def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again with the same webhook-id, starting a fresh retry schedule."""
    if not delivery.endpoint.active:
        raise Conflict(
            "The endpoint is disabled; re-enable it (PATCH active=true) to redeliver.",
            disabled_reason=delivery.endpoint.disabled_reason,
        )
    with transaction.atomic():
        WebhookDelivery.objects.filter(id=delivery.id).update(
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now()
        )
        transaction.on_commit(lambda: publish([delivery.id]))
    delivery.refresh_from_db()
    return delivery


# --- the sweeper -----------------------------------------------------------------------------


def sweep(*, grace: float = 15.0, batch: int = 1000) -> dict:
    """Catch up whatever the on-commit path missed: events never fanned out and deliveries due
    (a long retry wait ended, a task was lost with the broker, a worker died mid-attempt).
    `grace` keeps it from doubling tasks that are simply still in the queue."""
    cutoff = timezone.now() - timedelta(seconds=grace)
    stale_events = list(
        Event.objects.filter(dispatched_at__isnull=True, created__lte=cutoff)
        .order_by("created")
        .values_list("id", flat=True)[:batch]
    )
    queued_now = events_dispatch(stale_events) if stale_events else []
    with transaction.atomic():
        due = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                status=DeliveryStatus.PENDING,
                next_attempt_at__lte=cutoff,
                endpoint__active=True,
            )
            .order_by("next_attempt_at")
            .values_list("id", flat=True)[:batch]
        )
        # Bumping to now means the next sweep leaves these alone for another `grace`.
        WebhookDelivery.objects.filter(id__in=due).update(next_attempt_at=timezone.now())
    published = publish([*queued_now, *due])
    WebhookEndpoint.objects.filter(previous_secret_expires__lte=timezone.now()).update(
        previous_secret="", previous_secret_expires=None
    )
    return {"events": len(stale_events), "due": len(due), "published": published}
