"""One attempt at a time against a real HTTP receiver on loopback (no worker): signing, the
retry and disable rules, redirects, timeouts, pinning to the checked address, fan-out and the
sweeper. The worker and broker are exercised in test_worker.py."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from api.events import emit
from api.models import Event
from api.webhooks import services, transport
from api.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tests.api.webhooks.receiver import Receiver


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def endpoint(organisation, receiver):
    return services.endpoint_create(organisation=organisation, url=receiver.url, event_types=["*"])


def one_event(organisation, event_type="referral.received"):
    (event,) = emit(
        event_type,
        organisations=[organisation],
        data={"referral_id": "5d1c...", "links": {"referral": "/api/v1/referrals/5d1c/"}},
    )
    services.events_dispatch([event.id])
    return WebhookDelivery.objects.get(event=event)


def make_due(delivery):
    WebhookDelivery.objects.filter(id=delivery.id).update(next_attempt_at=timezone.now())


def test_a_delivery_is_signed_thin_and_sequenced(organisation, endpoint, receiver):
    first = one_event(organisation)
    second = one_event(organisation, "capacity.updated")
    assert (first.sequence, second.sequence) == (1, 2)
    attempt = services.delivery_attempt(first.id)
    assert attempt.succeeded and attempt.status_code == 200
    (got,) = receiver.received
    payload = Webhook(endpoint.secret).verify(got.body, got.headers)
    assert got.headers["webhook-id"] == str(first.event_id)
    assert payload["type"] == "referral.received" and payload["sequence"] == 1
    assert set(payload) == {"type", "timestamp", "sequence", "data"}
    assert payload["data"]["id"] == str(first.event_id)
    first.refresh_from_db()
    assert first.status == DeliveryStatus.SUCCEEDED and first.next_attempt_at is None
    assert services.delivery_attempt(first.id) is None, "a done delivery is not sent again"


def test_500_then_200_arrives_with_the_same_webhook_id(organisation, endpoint, receiver):
    receiver.script = [(500, {})]
    delivery = one_event(organisation)
    failed = services.delivery_attempt(delivery.id)
    assert failed.status_code == 500 and not failed.succeeded
    delivery.refresh_from_db()
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert delivery.status == DeliveryStatus.PENDING and 4 <= wait <= 5.6
    assert services.delivery_attempt(delivery.id) is None, "not due yet"
    make_due(delivery)
    assert services.delivery_attempt(delivery.id).succeeded
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(delivery.event_id)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_429_retry_after_is_honoured(organisation, endpoint, receiver):
    receiver.script = [(429, {"Retry-After": "120"})]
    delivery = one_event(organisation)
    services.delivery_attempt(delivery.id)
    delivery.refresh_from_db()
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 115 <= wait <= 121


def test_a_redirect_to_an_internal_address_is_a_failure_not_followed(
    organisation, endpoint, receiver
):
    receiver.script = [(302, {"Location": "http://169.254.169.254/latest/meta-data/"})]
    delivery = one_event(organisation)
    attempt = services.delivery_attempt(delivery.id)
    assert attempt.status_code == 302 and not attempt.succeeded
    assert "169.254.169.254" in attempt.error and "not followed" in attempt.error
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert len(receiver.received) == 1


def test_410_disables_at_once_and_re_enabling_delivers_what_waited(
    organisation, endpoint, receiver
):
    receiver.script = [(410, {})]
    delivery = one_event(organisation)
    services.delivery_attempt(delivery.id)
    endpoint.refresh_from_db()
    assert not endpoint.active and "410" in endpoint.disabled_reason
    waiting = one_event(organisation)
    assert services.delivery_attempt(delivery.id) is None
    assert services.delivery_attempt(waiting.id) is None
    services.endpoint_update(endpoint=endpoint, active=True)
    for pending in (delivery, waiting):
        assert services.delivery_attempt(pending.id).succeeded
    assert len(receiver.received) == 3


def test_three_days_of_failures_disable_with_a_reason(organisation, endpoint, receiver):
    receiver.default = (503, {})
    delivery = one_event(organisation)
    services.delivery_attempt(delivery.id)
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.failing_since is not None
    WebhookEndpoint.objects.filter(id=endpoint.id).update(
        failing_since=timezone.now() - timedelta(days=3, minutes=1)
    )
    make_due(delivery)
    services.delivery_attempt(delivery.id)
    endpoint.refresh_from_db()
    assert not endpoint.active and "three days" in endpoint.disabled_reason


def test_gives_up_after_ten_attempts(organisation, endpoint, receiver):
    receiver.default = (500, {})
    delivery = one_event(organisation)
    for _ in range(10):
        make_due(delivery)
        assert services.delivery_attempt(delivery.id) is not None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 10
    assert delivery.attempt_log.count() == 10


def test_any_exception_while_attempting_is_a_failed_attempt_that_disables_in_time(
    organisation, endpoint, receiver
):
    """Issue 11, item 8: an exception (UnicodeEncodeError from a non-ASCII path was the one
    found) left no attempt, never counted toward disabling, and the sweeper queued it again
    for ever."""

    def raising(url, body, headers):
        "é".encode("ascii")

    delivery = one_event(organisation)
    attempt = services.delivery_attempt(delivery.id, post=raising)
    assert attempt.error == "internal error: UnicodeEncodeError" and not attempt.succeeded
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert delivery.attempt_log.get().error == "internal error: UnicodeEncodeError"
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None
    WebhookEndpoint.objects.filter(id=endpoint.id).update(
        failing_since=timezone.now() - timedelta(days=3, minutes=1)
    )
    make_due(delivery)
    services.delivery_attempt(delivery.id, post=raising)
    endpoint.refresh_from_db()
    assert not endpoint.active and "three days" in endpoint.disabled_reason


def test_a_url_saved_before_normalisation_is_sent_encoded(organisation, endpoint, receiver):
    WebhookEndpoint.objects.filter(id=endpoint.id).update(url=receiver.url + "/é?q=ü")
    delivery = one_event(organisation)
    assert services.delivery_attempt(delivery.id).succeeded
    assert receiver.received[0].path == "/hooks/%C3%A9?q=%C3%BC"


def test_attempts_cut_short_are_recorded_and_the_round_still_ends(organisation, endpoint):
    """A worker that dies mid-attempt (or cannot store the outcome) leaves its attempt running;
    the next claim records it as cut short, and once the round is spent the sweeper gives the
    delivery up instead of queueing it again for ever."""
    delivery = one_event(organisation)
    expire_lease = timezone.now() - timedelta(minutes=5)
    for attempt in range(1, services.MAX_ATTEMPTS + 1):
        claimed = services._claim(delivery.id)  # the worker dies after this
        assert claimed is not None and claimed[0].attempts == attempt
        WebhookDelivery.objects.filter(id=delivery.id).update(next_attempt_at=expire_lease)
        if attempt < services.MAX_ATTEMPTS:
            assert services.sweep(grace=15)["due"] == 1
    errors = list(delivery.attempt_log.order_by("created").values_list("error", flat=True))
    assert errors == [services.CUT_SHORT] * 9 + [services.UNFINISHED]
    assert services._claim(delivery.id) is None, "the round is spent"
    assert services.sweep(grace=15) == {"events": 0, "due": 0, "given_up": 1, "published": 0}
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None
    assert set(delivery.attempt_log.values_list("error", flat=True)) == {services.CUT_SHORT}
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None
    assert services.sweep(grace=15)["given_up"] == 0


def test_total_timeout_and_body_cap(organisation, endpoint, receiver, monkeypatch):
    monkeypatch.setattr(transport, "TOTAL_TIMEOUT", 0.5)
    receiver.script = [(200, {}, 2.0), (299, {})]
    delivery = one_event(organisation)
    started = time.monotonic()
    attempt = services.delivery_attempt(delivery.id)
    assert time.monotonic() - started < 1.5
    assert attempt.error == "timed out" and attempt.status_code is None
    make_due(delivery)
    attempt = services.delivery_attempt(delivery.id)
    assert attempt.succeeded and len(attempt.response_excerpt) == transport.RESPONSE_BODY_CAP


def test_a_dead_receiver_is_a_retried_connection_error(organisation, receiver):
    endpoint = services.endpoint_create(
        organisation=organisation, url=receiver.url, event_types=["*"]
    )
    receiver.server.server_close()
    delivery = one_event(organisation)
    attempt = services.delivery_attempt(delivery.id)
    assert attempt.error.startswith("connection error") and not attempt.succeeded
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert endpoint.id == delivery.endpoint_id


def test_connects_to_the_checked_address_and_sends_the_real_host(
    organisation, receiver, monkeypatch
):
    lookups = []

    def resolve(host, port):
        # Stands in for DNS: the name exists only here.
        lookups.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(transport, "resolve", resolve)
    url = f"http://receiver.test:{receiver.port}/hooks"
    services.endpoint_create(organisation=organisation, url=url, event_types=["*"])
    delivery = one_event(organisation)
    lookups.clear()
    assert services.delivery_attempt(delivery.id).succeeded
    assert lookups == ["receiver.test"], "resolved once, and the connection used that answer"
    assert receiver.received[0].headers["host"] == f"receiver.test:{receiver.port}"


def test_dns_rebinding_is_caught_at_delivery(organisation, receiver, monkeypatch, settings):
    answers = {"addr": "127.0.0.1"}
    monkeypatch.setattr(transport, "resolve", lambda host, port: [answers["addr"]])
    url = f"http://receiver.test:{receiver.port}/hooks"
    services.endpoint_create(organisation=organisation, url=url, event_types=["*"])
    delivery = one_event(organisation)
    answers["addr"] = "10.0.0.1"
    attempt = services.delivery_attempt(delivery.id)
    assert attempt.error.startswith("refused") and "10.0.0.1" in attempt.error
    assert receiver.received == []
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED


@pytest.mark.parametrize(
    "rebound",
    [
        "2002:a00:1::1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1:a00:0:100::",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
    ],
    ids=["6to4", "nat64", "nat64-local", "teredo"],
)
def test_rebinding_to_an_ipv6_form_of_an_internal_address_is_caught_at_delivery(
    organisation, receiver, monkeypatch, rebound
):
    answers = {"addr": "127.0.0.1"}
    monkeypatch.setattr(transport, "resolve", lambda host, port: [answers["addr"]])
    url = f"http://receiver.test:{receiver.port}/hooks"
    services.endpoint_create(organisation=organisation, url=url, event_types=["*"])
    delivery = one_event(organisation)
    answers["addr"] = rebound
    attempt = services.delivery_attempt(delivery.id)
    assert attempt.error.startswith("refused") and rebound in attempt.error
    assert "embedded in its" in attempt.error
    assert receiver.received == []
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED


def test_fan_out_matches_types_numbers_per_endpoint_and_holds_for_disabled(
    organisation, make_organisation, receiver
):
    wants_all = services.endpoint_create(
        organisation=organisation, url=receiver.url, event_types=["*"]
    )
    wants_capacity = services.endpoint_create(
        organisation=organisation, url=receiver.url, event_types=["capacity.updated"]
    )
    off = services.endpoint_create(organisation=organisation, url=receiver.url, event_types=["*"])
    services.endpoint_update(endpoint=off, active=False)
    elsewhere = services.endpoint_create(
        organisation=make_organisation(), url=receiver.url, event_types=["*"]
    )
    events = [
        *emit("referral.received", organisations=[organisation], data={}),
        *emit("capacity.updated", organisations=[organisation], data={}),
    ]
    sendable = services.events_dispatch([e.id for e in events])
    assert services.events_dispatch([e.id for e in events]) == [], "fanned out once"
    rows = {
        (d.endpoint_id, d.event.type): d.sequence
        for d in WebhookDelivery.objects.select_related("event")
    }
    assert rows == {
        (wants_all.id, "referral.received"): 1,
        (wants_all.id, "capacity.updated"): 2,
        (wants_capacity.id, "capacity.updated"): 1,
        (off.id, "referral.received"): 1,
        (off.id, "capacity.updated"): 2,
    }
    assert len(sendable) == 3, "the disabled endpoint's deliveries wait"
    assert not WebhookDelivery.objects.filter(endpoint=elsewhere).exists()
    assert not Event.objects.filter(dispatched_at__isnull=True).exists()


def test_sweeper_fans_out_lost_events_and_requeues_due_deliveries(organisation, endpoint):
    (event,) = emit("referral.received", organisations=[organisation], data={})
    old = timezone.now() - timedelta(minutes=1)
    Event.objects.filter(id=event.id).update(created=old)
    result = services.sweep(grace=15)
    assert result == {"events": 1, "due": 0, "given_up": 0, "published": 1}
    delivery = WebhookDelivery.objects.get(event=event)
    WebhookDelivery.objects.filter(id=delivery.id).update(next_attempt_at=old)
    assert services.sweep(grace=15) == {"events": 0, "due": 1, "given_up": 0, "published": 1}
    assert services.sweep(grace=15)["due"] == 0, "bumped: not queued twice in a row"
    services.endpoint_update(endpoint=endpoint, active=False)
    WebhookDelivery.objects.filter(id=delivery.id).update(next_attempt_at=old)
    assert services.sweep(grace=15)["due"] == 0, "a disabled endpoint's deliveries wait"


def test_payload_carries_no_personal_data_fields(organisation, endpoint):
    delivery = one_event(organisation)
    body = json.loads(services.payload(delivery))
    assert set(body["data"]) == {"id", "referral_id", "links"}


def test_after_rotation_both_secrets_verify_for_a_day(organisation, endpoint, receiver):
    old = endpoint.secret
    rotated = services.endpoint_rotate_secret(endpoint=endpoint)
    delivery = one_event(organisation)
    assert services.delivery_attempt(delivery.id).succeeded
    (got,) = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, rotated.secret):
        Webhook(secret).verify(got.body, got.headers)
    WebhookEndpoint.objects.filter(id=endpoint.id).update(
        previous_secret_expires=timezone.now() - timedelta(seconds=1)
    )
    second = one_event(organisation)
    assert services.delivery_attempt(second.id).succeeded
    assert len(receiver.received[1].headers["webhook-signature"].split(" ")) == 1


@pytest.fixture
def certificate(tmp_path):
    """A certificate for receiver.test from a CA made here: no public CA can sign for a test
    name, so the client's trust store is the one part stood in for (transport.tls_context)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "receiver.test")])
    now = timezone.now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("receiver.test")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certfile), str(keyfile)


def test_tls_goes_to_the_checked_address_with_the_url_host_for_sni_and_certificate(
    organisation, certificate, monkeypatch
):
    import ssl

    certfile, keyfile = certificate
    monkeypatch.setattr(transport, "resolve", lambda host, port: ["127.0.0.1"])
    monkeypatch.setattr(
        transport, "tls_context", lambda: ssl.create_default_context(cafile=certfile)
    )
    with Receiver() as tls:
        tls.serve_tls(certfile, keyfile)
        url = f"https://receiver.test:{tls.port}/hooks"
        services.endpoint_create(organisation=organisation, url=url, event_types=["*"])
        delivery = one_event(organisation)
        assert services.delivery_attempt(delivery.id).succeeded
        assert tls.server_names == ["receiver.test"]
        assert tls.received[0].headers["host"] == f"receiver.test:{tls.port}"
        # The same receiver under another name fails the certificate check: it is verified.
        WebhookEndpoint.objects.update(url=f"https://other.test:{tls.port}/hooks")
        second = one_event(organisation)
        attempt = services.delivery_attempt(second.id)
        assert not attempt.succeeded and "TLS" in attempt.error
