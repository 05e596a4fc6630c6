"""Idempotency-Key on POST /referrals/: replays, reuse with another body, failures not kept,
per-client keys, and concurrent duplicates on separate database connections."""

import json

import pytest
from django.db import connection

from api.models import Event, IdempotencyKey
from referrals.models import Referral
from tests.conftest import at_once

URL = "/api/v1/referrals"


def post(client, body, key):
    return client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_same_key_same_body_replays_and_creates_nothing(sender, payload):
    body = payload()
    first = post(sender, body, "key-1")
    events = Event.objects.count()

    second = post(sender, body, "key-1")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Location"] == first["Location"]
    assert second["ETag"] == first["ETag"]
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Referral.objects.count() == 1
    assert Event.objects.count() == events


def test_key_order_and_whitespace_do_not_matter(sender, payload):
    body = payload()
    first = post(sender, body, "key-2")
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    second = sender.post(
        URL, reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY="key-2"
    )
    assert second.status_code == 201
    assert second.json()["id"] == first.json()["id"]


def test_same_key_different_body_is_422(sender, payload):
    post(sender, payload(), "key-3")
    response = post(sender, payload(urgency="urgent"), "key-3")
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/idempotency-key-reused"
    assert Referral.objects.count() == 1


def test_failures_are_not_kept(sender, payload):
    bad = payload()
    bad["nationality"] = "x"
    assert post(sender, bad, "key-4").status_code == 400
    assert not IdempotencyKey.objects.filter(key="key-4").exists()
    assert post(sender, payload(), "key-4").status_code == 201


def test_keys_are_per_client(sender, payload, api_client_for, sender_org):
    other_client = api_client_for(sender_org)
    a = post(sender, payload(), "shared")
    b = post(other_client, payload(), "shared")
    assert a.json()["id"] != b.json()["id"]
    assert Referral.objects.count() == 2


def test_no_key_creates_every_time(sender, payload):
    body = payload()
    sender.post(URL, body, format="json")
    sender.post(URL, body, format="json")
    assert Referral.objects.count() == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "spaces are not ok", "é"])
def test_malformed_keys(key, sender, payload):
    response = post(sender, payload(), key)
    assert response.status_code == 400
    assert Referral.objects.count() == 0


def test_stored_response_holds_no_personal_data(sender, payload):
    post(sender, payload(), "key-5")
    stored = IdempotencyKey.objects.get(key="key-5")
    assert "Mia" not in str(stored.response_body)
    assert stored.response_status == 201


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_create_one(sender, payload):
    """Eight threads, each with its own database connection, send the same key at once."""
    body = payload()

    def send():
        response = post(sender, body, "concurrent-key")
        return response.status_code, response.json().get("id"), "Idempotent-Replayed" in response

    results = at_once(send, 8)
    assert len(results) == 8
    # The losers waited on the key row's unique index, then replayed the winner's answer.
    assert {status for status, _, _ in results} == {201}
    assert len({rid for _, rid, _ in results}) == 1
    assert sorted(replayed for _, _, replayed in results) == [False] + [True] * 7
    assert Referral.objects.count() == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM api_idempotencykey WHERE key = 'concurrent-key'")
        assert cursor.fetchone()[0] == 1


def test_a_429_is_not_replayed(sender, payload, settings):
    """Rate limiting happens before the key is taken, so a throttled attempt leaves no row and
    the retry after Retry-After really runs."""
    rest = dict(settings.REST_FRAMEWORK)
    settings.REST_FRAMEWORK = {**rest, "DEFAULT_THROTTLE_RATES": {"application": "1/min"}}
    assert post(sender, payload(), "first").status_code == 201
    throttled = post(sender, payload(), "second")
    assert throttled.status_code == 429
    assert not IdempotencyKey.objects.filter(key="second").exists()
    settings.REST_FRAMEWORK = rest
    retried = post(sender, payload(), "second")
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
