"""End to end with real parts: our own Redis broker, a `celery -A api worker` process on the
test database, a loopback HTTP receiver, and every signature checked with the
`standardwebhooks` library. Includes the broker outage and the retry after a 500."""

import time

import pytest
from django.db import transaction
from standardwebhooks import Webhook

from api.celery import app as celery_app
from api.events import emit
from api.webhooks import services
from api.webhooks.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEndpoint,
)
from api.webhooks.tasks import sweep
from tests.api.webhooks.receiver import Receiver

pytestmark = [pytest.mark.urls("tests.api.webhooks.urls"), pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def emit_events(organisation, count: int) -> list:
    """What the referral and directory services do: emit inside the change's transaction."""
    ids = []
    for n in range(count):
        with transaction.atomic():
            event_type = ("referral.received", "capacity.updated", "partnership.changed")[n % 3]
            (event,) = emit(
                event_type,
                organisations=[organisation],
                data={"n": n, "links": {"self": f"/api/v1/things/{n}"}},
            )
        ids.append(str(event.id))
    return ids


def verify_all(received, secret) -> list[dict]:
    verifier = Webhook(secret)
    return [verifier.verify(got.body, got.headers) for got in received]


def test_events_arrive_signed_through_a_real_worker(worker, organisation, receiver, api_client_for):
    endpoint = services.endpoint_create(
        organisation=organisation, url=receiver.url, event_types=["*"]
    )
    event_ids = emit_events(organisation, 20)
    client = api_client_for(organisation, ["webhooks:manage"])
    ping = client.post(f"/api/v1/webhook-endpoints/{endpoint.id}/ping")
    assert ping.status_code == 202
    received = receiver.wait_for(21)
    payloads = verify_all(received, endpoint.secret)
    assert {got.headers["webhook-id"] for got in received} == {*event_ids, ping.json()["event"]}
    assert sorted(p["sequence"] for p in payloads) == list(range(1, 22))
    deadline = time.time() + 10
    while WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).exists():
        assert time.time() < deadline, "attempts recorded"
        time.sleep(0.1)
    assert WebhookDeliveryAttempt.objects.filter(succeeded=True).count() == 21


def test_a_broker_outage_delays_and_loses_nothing(
    worker, broker, organisation, receiver, api_client_for
):
    endpoint = services.endpoint_create(
        organisation=organisation, url=receiver.url, event_types=["*"]
    )
    client = api_client_for(organisation, ["webhooks:manage"])
    broker.stop()
    expected = []
    for _ in range(5):
        started = time.monotonic()
        response = client.post(f"/api/v1/webhook-endpoints/{endpoint.id}/ping")
        assert response.status_code == 202
        assert time.monotonic() - started < 1.0, "a dead broker must not hold the request"
        expected.append(response.json()["event"])
        started = time.monotonic()
        expected += emit_events(organisation, 2)
        assert time.monotonic() - started < 1.0
    # Nothing can have been attempted: every delivery waits in the outbox for the broker.
    assert WebhookDeliveryAttempt.objects.count() == 0
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count() == len(expected)
    assert receiver.received == []
    broker.start()
    # The sweeper (Celery beat in production) queues everything still due.
    with celery_app.connection_for_write(broker.url) as connection:
        sweep.apply_async(kwargs={"grace": 0}, connection=connection)
    received = receiver.wait_for(len(expected), timeout=60)
    verify_all(received, endpoint.secret)
    assert sorted(got.headers["webhook-id"] for got in received) == sorted(expected)


def test_500_then_200_arrives_after_a_retry_with_the_same_webhook_id(
    worker, organisation, receiver
):
    receiver.script = [(500, {})]
    endpoint = services.endpoint_create(
        organisation=organisation, url=receiver.url, event_types=["*"]
    )
    (event_id,) = emit_events(organisation, 1)
    first, second = receiver.wait_for(2, timeout=30)
    verify_all([first, second], endpoint.secret)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event_id
    attempts = attempts_when_settled(2)
    assert [(a["status_code"], a["succeeded"]) for a in attempts] == [(500, False), (200, True)]
    # Not before the first step of the schedule, less its jitter and the timer's tolerance.
    earliest = services.RETRY_DELAYS[0] * (1 - services.JITTER)
    gap = attempts[1]["created"] - attempts[0]["created"]
    assert gap.total_seconds() >= earliest - services.EARLY_TOLERANCE.total_seconds()


def test_a_slow_receiver_does_not_delay_another(worker, make_organisation, receiver):
    slow_org, fast_org = make_organisation(), make_organisation()
    with Receiver(default=(200, {}, 3.0)) as slow:
        services.endpoint_create(organisation=slow_org, url=slow.url, event_types=["*"])
        services.endpoint_create(organisation=fast_org, url=receiver.url, event_types=["*"])
        emit_events(slow_org, 6)
        slow.wait_for(1)
        emit_events(fast_org, 1)
        (got,) = receiver.wait_for(1, timeout=10)
        # Delivered while the slow receiver still held its first request.
        assert got.at < slow.answered(1)[0]
        slow.wait_for(6, timeout=30)


def attempts_when_settled(count: int, timeout: float = 30.0) -> list:
    """The delivery attempts once `count` are stored and none is still running."""
    deadline = time.time() + timeout
    while True:
        rows = list(
            WebhookDeliveryAttempt.objects.order_by("created").values(
                "status_code", "succeeded", "error", "response_excerpt", "created"
            )
        )
        if len(rows) >= count and not any(r["error"] == services.UNFINISHED for r in rows):
            return rows
        assert time.time() < deadline, f"{len(rows)} of {count} attempts recorded: {rows}"
        time.sleep(0.1)


def test_a_non_ascii_url_is_delivered_percent_encoded(worker, organisation, receiver):
    """Issue 11, item 8: `…/é` was accepted, then every delivery raised UnicodeEncodeError in
    the worker, no attempt was recorded and the sweeper queued it again for ever."""
    endpoint = services.endpoint_create(
        organisation=organisation, url=receiver.url + "/café?nom=é", event_types=["*"]
    )
    assert endpoint.url == receiver.url + "/caf%C3%A9?nom=%C3%A9"
    (event_id,) = emit_events(organisation, 1)
    (got,) = receiver.wait_for(1)
    assert got.path == "/hooks/caf%C3%A9?nom=%C3%A9"
    assert got.headers["webhook-id"] == event_id
    (attempt,) = attempts_when_settled(1)
    assert attempt["succeeded"]


def test_an_answer_the_database_cannot_store_is_still_a_recorded_attempt(
    worker, organisation, receiver
):
    """A NUL byte in the receiver's body made storing the attempt fail: nothing was recorded
    and the delivery was never retried on schedule."""
    receiver.script = [(500, {})]
    receiver.body = b"bad\x00gateway"
    services.endpoint_create(organisation=organisation, url=receiver.url, event_types=["*"])
    emit_events(organisation, 1)
    receiver.wait_for(2, timeout=30)
    first, second = attempts_when_settled(2)
    assert (first["status_code"], first["succeeded"]) == (500, False)
    assert first["response_excerpt"] == "bad\ufffdgateway"
    assert second["succeeded"]


def test_an_exception_in_the_worker_is_a_failed_attempt_that_counts(worker, organisation, receiver):
    """Any error while attempting (here a signing secret the worker cannot decode) is stored as
    a failed attempt: retried on the schedule, and counted toward disabling the endpoint."""
    endpoint = services.endpoint_create(
        organisation=organisation, url=receiver.url, event_types=["*"]
    )
    WebhookEndpoint.objects.filter(id=endpoint.id).update(secret="whsec_not*base64")
    emit_events(organisation, 1)
    (attempt,) = attempts_when_settled(1)
    assert attempt["error"] == "internal error: binascii.Error" and not attempt["succeeded"]
    assert receiver.received == []
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
