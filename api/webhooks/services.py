"""Webhook rules: endpoints, fan-out of outbox events into deliveries, one attempt at a
delivery, and the retry schedule. Tasks (tasks.py) are thin wrappers over these."""

import contextlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from api.errors import Conflict, InvalidInput, Unprocessable
from api.events import EVENT_TYPES
from api.joins import Joined, instances, select_list
from api.models import Event
from api.timestamps import iso
from api.webhooks import transport
from api.webhooks.models import (
    STANDARD_PAYLOAD,
    WILDCARD,
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
    subscribed,
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
# The first attempt and one after each wait: a round of the schedule.
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# Each attempt is stored when it is claimed, before anything can go wrong, and completed with
# its outcome. One that never completes (the worker died, or storing the outcome failed) is
# marked cut short by the next claim, or by the sweeper once the round is spent: no delivery is
# tried again and again without a trace.
UNFINISHED = "no outcome yet: the attempt is running"
CUT_SHORT = "the attempt did not finish: the worker stopped or could not store the outcome"
FAILING_LIMIT = timedelta(days=3)
SECRET_OVERLAP = timedelta(hours=24)
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


def is_retryable(outcome: transport.Outcome) -> bool:
    """Timeouts, connection errors, 429 and 5xx are worth another try; a redirect, a refused
    address or any other answer is not."""
    if outcome.status_code is None:
        return not outcome.error.startswith("refused")
    return outcome.status_code == 429 or outcome.status_code >= 500


# --- endpoints -------------------------------------------------------------------------------


def _validated_url(url: str) -> str:
    """The URL in its normalised form (IDNA host, percent-encoded path and query), as it will
    be sent, or a 422 naming why it is refused (the schema cannot tell which hosts resolve)."""
    try:
        target, _ = transport.check_url(url)
    except transport.URLRefused as exc:
        raise Unprocessable(str(exc), errors=[{"pointer": "/url", "detail": str(exc)}]) from exc
    limit = WebhookEndpoint._meta.get_field("url").max_length
    if len(target.url) > limit:
        detail = f"The URL is too long once percent-encoded (at most {limit} characters)."
        raise Unprocessable(detail, errors=[{"pointer": "/url", "detail": detail}])
    return target.url


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
    *,
    organisation,
    url: str,
    event_types: list[str],
    description: str = "",
    payload_format: str = STANDARD_PAYLOAD,
    data_filter: dict | None = None,
) -> WebhookEndpoint:
    if payload_format != STANDARD_PAYLOAD and payload_format not in _payload_formats:
        raise ValueError(f"unknown payload format {payload_format!r}")
    return WebhookEndpoint.objects.create(
        organisation=organisation,
        url=_validated_url(url),
        event_types=_validate_event_types(event_types),
        description=description,
        payload_format=payload_format,
        data_filter=data_filter or {},
        secret=transport.new_secret(),
    )


def endpoint_update(*, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    """Change URL, event types, description or `active`. Re-enabling clears the reason and
    sends everything that waited while the endpoint was off."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if "url" in changes:
            endpoint.url = _validated_url(changes["url"])
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
        endpoint.secret = transport.new_secret()
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
    return endpoint_send(
        endpoint=endpoint, event_type="ping", data={"webhook_endpoint_id": str(endpoint.id)}
    )


def endpoint_send(
    *, endpoint: WebhookEndpoint, event_type: str, data: dict, sequence: int | None = None
) -> WebhookDelivery:
    """An event for this endpoint alone (a ping, a FHIR handshake or heartbeat), delivered like
    any other. It takes the endpoint's next sequence number unless `sequence` is given: a FHIR
    subscription numbers its events only, so its own messages are numbered apart."""
    with transaction.atomic():
        now = timezone.now()
        event = Event.objects.create(
            type=event_type,
            organisation_id=endpoint.organisation_id,
            data=data,
            dispatched_at=now,
        )
        if sequence is None:
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
  RETURNING id, type, organisation_id, created, data
)
SELECT c.id, c.type, c.created, e.id, e.event_types, e.active, e.data_filter, c.data
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
SELECT d.id, %(endpoint)s::uuid, d.event_id, reserved.base + d.n, %(pending)s, 0, %(now)s, %(now)s
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
        for row in cursor.fetchall():
            event_id, event_type, _, endpoint_id, event_types, active, data_filter, data = row
            if endpoint_id is None or not subscribed(event_types, event_type):
                continue
            if data_filter and not data_matches(_json(data), _json(data_filter)):
                continue
            wanted.setdefault((str(endpoint_id), active), []).append(event_id)
        for (endpoint_id, active), events in sorted(wanted.items()):
            ids = [uuid.uuid4() for _ in events]
            cursor.execute(
                _DELIVERIES_SQL.format(**tables),
                {"endpoint": endpoint_id, "count": len(events), "now": now, "ids": ids,
                 "events": events, "pending": DeliveryStatus.PENDING},
            )  # fmt: skip
            if active:
                sendable.extend(ids)
    return sendable


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def data_matches(data: dict, data_filter: dict) -> bool:
    """Every key of the filter is in the event's data with one of the filter's values."""
    return all(data.get(key) in values for key, values in data_filter.items())


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


# Other ways of writing a delivery's body, by name (WebhookEndpoint.payload_format): an app's
# function from the delivery to (body, content type). The FHIR facade registers its
# notification Bundles; the signing, retries and address checks stay this module's.
_payload_formats: dict[str, Callable[[WebhookDelivery], tuple[bytes, str]]] = {}


def register_payload_format(
    name: str, render: Callable[[WebhookDelivery], tuple[bytes, str]]
) -> None:
    _payload_formats[name] = render


def rendered(delivery: WebhookDelivery) -> tuple[bytes, str]:
    """The body and its content type, in the endpoint's payload format."""
    if delivery.endpoint.payload_format == STANDARD_PAYLOAD:
        return payload(delivery), "application/json"
    return _payload_formats[delivery.endpoint.payload_format](delivery)


def payload(delivery: WebhookDelivery) -> bytes:
    """Thin: type, ids, timestamps and links that the event carried. Never personal data; the
    receiver fetches details with its own token."""
    event = delivery.event
    body = {
        "type": event.type,
        "timestamp": iso(event.created),
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


# The claimed delivery as it is after the claim, with its endpoint and event.
_CLAIMED = (
    Joined.of(WebhookDelivery, "d"),
    Joined.of(WebhookEndpoint, "e"),
    Joined.of(Event, "v"),
)
_CLAIM_SQL = """
WITH claimed AS (
  UPDATE {delivery} d SET next_attempt_at = %(lease)s, attempts = d.attempts + 1
  FROM {endpoint} e, {event} v
  WHERE d.id = %(id)s AND d.status = %(pending)s AND d.next_attempt_at <= %(due)s
    AND d.attempts < %(max_attempts)s AND e.id = d.endpoint_id AND e.active AND v.id = d.event_id
  RETURNING {claimed}
), cut_short AS (
  UPDATE {attempt} a SET error = %(cut_short)s FROM claimed
  WHERE a.delivery_id = %(id)s AND a.status_code IS NULL AND a.error = %(unfinished)s
), started AS (
  INSERT INTO {attempt} (id, delivery_id, endpoint_id, created, succeeded, error,
    response_excerpt)
  SELECT %(attempt)s, %(id)s, endpoint_id, %(now)s, false, %(unfinished)s, '' FROM claimed
)
SELECT * FROM claimed
"""


def _claim(delivery_id) -> tuple[WebhookDelivery, WebhookDeliveryAttempt] | None:
    """Lease a due delivery to this worker and store its attempt as running, or None if it is
    not due, done, its round is spent, its endpoint is off or another worker holds it (a
    duplicate task is then a harmless no-op). One statement, because this runs once per
    attempt."""
    now = timezone.now()
    sql = _CLAIM_SQL.format(
        delivery=WebhookDelivery._meta.db_table,
        endpoint=WebhookEndpoint._meta.db_table,
        event=Event._meta.db_table,
        attempt=WebhookDeliveryAttempt._meta.db_table,
        claimed=select_list(_CLAIMED),
    )
    attempt_id = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "id": delivery_id,
                "lease": now + LEASE,
                "due": now + EARLY_TOLERANCE,
                "max_attempts": MAX_ATTEMPTS,
                "now": now,
                "attempt": attempt_id,
                "unfinished": UNFINISHED,
                "cut_short": CUT_SHORT,
                "pending": DeliveryStatus.PENDING,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    delivery, endpoint, event = instances(row, _CLAIMED)
    delivery.endpoint, delivery.event = endpoint, event
    attempt = WebhookDeliveryAttempt(
        id=attempt_id, delivery=delivery, endpoint=endpoint, created=now, error=UNFINISHED
    )
    attempt._state.adding = False
    return delivery, attempt


def _send(delivery: WebhookDelivery, post) -> transport.Outcome:
    endpoint = delivery.endpoint
    now = timezone.now()
    body, content_type = rendered(delivery)
    timestamp = int(now.timestamp())
    msg_id = str(delivery.event_id)
    headers = {
        "Content-Type": content_type,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": transport.signature_header(
            signing_secrets(endpoint, now), msg_id, timestamp, body
        ),
    }
    return post(endpoint.url, body, headers)


def _exception_name(exc: Exception) -> str:
    kind = type(exc)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def delivery_attempt(delivery_id, *, post=None) -> WebhookDeliveryAttempt | None:
    """One attempt at one delivery: sign, POST, store what happened, schedule what comes next.
    Returns the stored attempt, or None when there was nothing to do. Whatever goes wrong on
    the way is a failed attempt like a refused connection: retried on the schedule and counted
    toward disabling the endpoint."""
    claimed = _claim(delivery_id)
    if claimed is None:
        return None
    delivery, attempt = claimed
    try:
        outcome = _send(delivery, post or transport.post)
    except Exception as exc:
        # The class only: the message and traceback may quote the endpoint's URL or payload.
        log.error("webhook attempt %s raised %s", attempt.id, _exception_name(exc))
        outcome = transport.Outcome(error=f"internal error: {_exception_name(exc)}")
    return _record(delivery, attempt, outcome)


def _storable(text: str) -> str:
    """Text PostgreSQL accepts: a receiver's body may hold NUL bytes, an error lone surrogates;
    either made storing the attempt fail, so it was never recorded."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


_SUCCESS_SQL = """
WITH attempt AS (
  UPDATE {attempt} SET status_code = %(status)s, latency_ms = %(latency)s, succeeded = true,
    error = '', response_excerpt = %(excerpt)s
  WHERE id = %(attempt)s
)
UPDATE {delivery} SET status = %(succeeded)s, next_attempt_at = NULL, delivered_at = %(now)s
WHERE id = %(id)s
"""


def _record_success(
    delivery: WebhookDelivery, attempt: WebhookDeliveryAttempt
) -> WebhookDeliveryAttempt:
    """The common case in one statement (the attempt and the delivery's new state commit
    together, without a transaction's extra round trips)."""
    sql = _SUCCESS_SQL.format(
        attempt=WebhookDeliveryAttempt._meta.db_table, delivery=WebhookDelivery._meta.db_table
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "attempt": attempt.id,
                "id": delivery.id,
                "now": timezone.now(),
                "status": attempt.status_code,
                "latency": attempt.latency_ms,
                "excerpt": attempt.response_excerpt,
                "succeeded": DeliveryStatus.SUCCEEDED,
            },
        )
    if delivery.endpoint.failing_since is not None:
        WebhookEndpoint.objects.filter(id=delivery.endpoint.id).update(failing_since=None)
    return attempt


def _record(
    delivery: WebhookDelivery, attempt: WebhookDeliveryAttempt, outcome: transport.Outcome
) -> WebhookDeliveryAttempt:
    """Complete the attempt and schedule what comes next: a retry, giving up, or disabling."""
    attempt.status_code = outcome.status_code
    attempt.latency_ms = outcome.latency_ms
    attempt.succeeded = outcome.succeeded
    attempt.error = _storable(outcome.error)[:500]
    attempt.response_excerpt = _storable(outcome.excerpt)[:512]
    if outcome.succeeded:
        return _record_success(delivery, attempt)
    now = timezone.now()
    endpoint = delivery.endpoint
    countdown = None
    with transaction.atomic():
        attempt.save(
            update_fields=["status_code", "latency_ms", "succeeded", "error", "response_excerpt"]
        )
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
        delivery.save(update_fields=["status", "next_attempt_at", "delivered_at"])
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
    `grace` keeps it from doubling tasks that are simply still in the queue. A delivery whose
    round is spent can only be due because its last attempt was cut short: it is given up."""
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
            .values_list("id", "attempts")[:batch]
        )
        again = [pk for pk, attempts in due if attempts < MAX_ATTEMPTS]
        spent = [pk for pk, attempts in due if attempts >= MAX_ATTEMPTS]
        # Bumping to now means the next sweep leaves these alone for another `grace`.
        WebhookDelivery.objects.filter(id__in=again).update(next_attempt_at=timezone.now())
        if spent:
            _give_up_cut_short(spent)
    published = publish([*queued_now, *again])
    WebhookEndpoint.objects.filter(previous_secret_expires__lte=timezone.now()).update(
        previous_secret="", previous_secret_expires=None
    )
    return {"events": len(stale_events), "due": len(again), "given_up": len(spent),
            "published": published}  # fmt: skip


def _give_up_cut_short(delivery_ids: list) -> None:
    """The last attempt of these rounds never finished: record it as cut short and stop, as
    after any last failed attempt, counting it toward disabling the endpoint."""
    now = timezone.now()
    WebhookDeliveryAttempt.objects.filter(
        delivery_id__in=delivery_ids, status_code__isnull=True, error=UNFINISHED
    ).update(error=CUT_SHORT)
    WebhookDelivery.objects.filter(id__in=delivery_ids).update(
        status=DeliveryStatus.FAILED, next_attempt_at=None
    )
    for endpoint in WebhookEndpoint.objects.filter(deliveries__id__in=delivery_ids).distinct():
        _note_failure(endpoint, now)
