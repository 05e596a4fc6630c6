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
from api.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookDeliveryAttempt
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
    ping = client.post(f"/api/v1/webhook-endpoints/{endpoint.id}/ping/")
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
        response = client.post(f"/api/v1/webhook-endpoints/{endpoint.id}/ping/")
        assert response.status_code == 202
        assert time.monotonic() - started < 1.0, "a dead broker must not hold the request"
        expected.append(response.json()["event"])
        started = time.monotonic()
        expected += emit_events(organisation, 2)
        assert time.monotonic() - started < 1.0
    time.sleep(1)
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
    assert 4.0 <= second.at - first.at <= 10.0, "the 5 s step, with jitter"
    deadline = time.time() + 10
    while not WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).exists():
        assert time.time() < deadline
        time.sleep(0.1)
    codes = list(WebhookDeliveryAttempt.objects.order_by("created").values_list("status_code"))
    assert codes == [(500,), (200,)]


def test_a_slow_receiver_does_not_delay_another(worker, make_organisation, receiver):
    slow_org, fast_org = make_organisation(), make_organisation()
    with Receiver(default=(200, {}, 3.0)) as slow:
        services.endpoint_create(organisation=slow_org, url=slow.url, event_types=["*"])
        services.endpoint_create(organisation=fast_org, url=receiver.url, event_types=["*"])
        emit_events(slow_org, 6)
        time.sleep(0.3)
        committed = time.time()
        emit_events(fast_org, 1)
        (got,) = receiver.wait_for(1, timeout=10)
        assert got.at - committed < 1.0
        slow.wait_for(6, timeout=30)
