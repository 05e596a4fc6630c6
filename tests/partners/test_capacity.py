"""Capacity: ETag / If-Match, ownership, bad input, bulk atomicity, append-only history and
the capacity.updated event."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.utils import timezone

from api.models import Event
from partners.models import Capacity, CapacityHistory

pytestmark = pytest.mark.django_db

GOOD = {
    "available": 4,
    "maximum": 12,
    "unit": "appointments",
    "accepting_referrals": "open",
    "estimated_wait_days": 1,
}


def url(service) -> str:
    return f"/api/v1/services/{service.pk}/capacity"


def snapshot(service) -> tuple:
    capacity = Capacity.objects.get(service=service)
    return (
        capacity.available,
        capacity.maximum,
        capacity.version,
        CapacityHistory.objects.filter(service=service).count(),
        Event.objects.filter(type="capacity.updated").count(),
    )


def test_get_returns_an_etag(client, make_service, organisation):
    service = make_service(organisation)
    response = client.get(url(service))
    assert response.status_code == 200
    assert response["ETag"] == f'"{service.pk}.1"'
    assert response.json()["version"] == 1


def test_put_with_current_etag_replaces_and_bumps_the_etag(client, make_service, organisation):
    service = make_service(organisation)
    etag = client.get(url(service))["ETag"]
    response = client.put(url(service), GOOD, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 200, response.content
    assert response.json()["available"] == 4
    assert response["ETag"] != etag
    assert client.get(url(service))["ETag"] == response["ETag"]


def test_stale_etag_is_412_and_changes_nothing(client, make_service, organisation):
    service = make_service(organisation)
    etag = client.get(url(service))["ETag"]
    assert client.put(url(service), GOOD, format="json", HTTP_IF_MATCH=etag).status_code == 200
    before = snapshot(service)
    response = client.put(url(service), {**GOOD, "available": 9}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 412
    assert response["Content-Type"] == "application/problem+json"
    # The same problem type, with the same members, as a referral's stale ETag.
    assert response.json()["type"] == "/problems/precondition-failed"
    assert response.json()["etag"] == client.get(url(service))["ETag"]
    assert snapshot(service) == before


def test_missing_if_match_is_428_and_changes_nothing(client, make_service, organisation):
    service = make_service(organisation)
    before = snapshot(service)
    response = client.put(url(service), GOOD, format="json")
    assert response.status_code == 428
    assert response.json()["type"] == "/problems/precondition-required"
    assert response.json()["etag"] == f'"{service.pk}.1"'
    assert snapshot(service) == before


@pytest.mark.parametrize("if_match", ["1", "", "abc", '"1'])
def test_an_unquoted_if_match_is_malformed_not_stale(client, make_service, organisation, if_match):
    service = make_service(organisation)
    before = snapshot(service)
    response = client.put(url(service), GOOD, format="json", HTTP_IF_MATCH=if_match)
    assert response.status_code == 400
    assert response.json()["type"] == "/problems/malformed-if-match"
    assert snapshot(service) == before


def test_put_on_another_organisations_service_is_409_wrong_party(
    client, make_service, make_organisation, api_client_for
):
    theirs = make_service(make_organisation())
    etag = api_client_for(theirs.organisation).get(url(theirs))["ETag"]
    before = snapshot(theirs)
    response = client.put(url(theirs), GOOD, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/wrong-party"
    assert snapshot(theirs) == before


def test_unknown_service_is_404(client):
    response = client.get("/api/v1/services/00000000-0000-0000-0000-000000000000/capacity")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_put_needs_capacity_write(api_client_for, make_service, organisation):
    service = make_service(organisation)
    client = api_client_for(organisation, scopes=["directory:read", "directory:write"])
    response = client.put(url(service), GOOD, format="json", HTTP_IF_MATCH="*")
    assert response.status_code == 403
    assert response.json()["missing_scopes"] == ["capacity:write"]


@pytest.mark.parametrize(
    ("change", "pointer", "status"),
    [
        ({"available": -1}, "/available", 400),
        # The schema allows each value; a rule across fields, or the clock, refuses it.
        ({"available": 13, "maximum": 12}, "/available", 422),
        ({"valid_until": "2020-01-01T00:00:00Z"}, "/valid_until", 422),
        ({"unit": "litres"}, "/unit", 400),
        ({"accepting_referrals": "sometimes"}, "/accepting_referrals", 400),
        ({"estimated_wait_days": -2}, "/estimated_wait_days", 400),
        ({"version": 99}, "/version", 400),
    ],
)
def test_bad_capacity_is_refused_naming_the_field_and_changes_nothing(
    client, make_service, organisation, change, pointer, status
):
    service = make_service(organisation)
    etag = client.get(url(service))["ETag"]
    before = snapshot(service)
    response = client.put(url(service), {**GOOD, **change}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == status, response.content
    assert pointer in [e["pointer"] for e in response.json()["errors"]]
    assert snapshot(service) == before


def test_update_appends_history_and_emits_to_owner_and_active_partners(
    client, make_service, organisation, make_organisation, make_partnership
):
    partner = make_organisation("Partner")
    proposed = make_organisation("Only proposed")
    stranger = make_organisation("Stranger")
    make_partnership(organisation, partner)
    make_partnership(proposed, organisation, status="proposed")
    service = make_service(organisation)
    etag = client.get(url(service))["ETag"]
    client.put(
        url(service),
        {**GOOD, "valid_until": (timezone.now() + timedelta(hours=4)).isoformat()},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    history = list(CapacityHistory.objects.filter(service=service).order_by("id"))
    assert [h.version for h in history] == [1, 2]
    assert history[-1].available == 4
    events = Event.objects.filter(type="capacity.updated")
    assert {e.organisation_id for e in events} == {organisation.pk, partner.pk}
    assert stranger.pk not in {e.organisation_id for e in events}
    assert events[0].data["services"] == [{"service_id": str(service.pk), "version": 2}]


def test_history_is_cursor_paginated_newest_first(client, make_service, organisation):
    service = make_service(organisation)
    for available in range(5):
        etag = client.get(url(service))["ETag"]
        client.put(
            url(service), {**GOOD, "available": available}, format="json", HTTP_IF_MATCH=etag
        )
    response = client.get(url(service) + "/history", {"limit": 4})
    body = response.json()
    assert [row["version"] for row in body["results"]] == [6, 5, 4, 3]
    rest = client.get(body["next"]).json()
    assert [row["version"] for row in rest["results"]] == [2, 1]


@pytest.mark.parametrize("statement", ["UPDATE", "DELETE"])
def test_history_is_append_only_in_the_database(make_service, statement):
    service = make_service()
    sql = {
        "UPDATE": "UPDATE partners_capacityhistory SET available = 99",
        "DELETE": "DELETE FROM partners_capacityhistory",
    }[statement]
    with (
        pytest.raises((IntegrityError, InternalError)),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert CapacityHistory.objects.filter(service=service, available=0).count() == 1


# --- Bulk -----------------------------------------------------------------------------------


def bulk(client, items):
    return client.post("/api/v1/capacity/bulk", {"items": items}, format="json")


def test_bulk_applies_every_item(client, make_service, organisation):
    services = [make_service(organisation, name=f"S{i}") for i in range(3)]
    response = bulk(client, [{"service_id": str(s.pk), **GOOD, "available": 7} for s in services])
    assert response.status_code == 200, response.content
    assert [row["version"] for row in response.json()["updated"]] == [2, 2, 2]
    assert set(Capacity.objects.values_list("available", flat=True)) == {7}
    assert CapacityHistory.objects.filter(version=2).count() == 3
    event = Event.objects.get(type="capacity.updated", organisation=organisation)
    assert {s["service_id"] for s in event.data["services"]} == {str(s.pk) for s in services}


def test_one_bad_item_rejects_the_whole_batch(client, make_service, organisation):
    services = [make_service(organisation, name=f"S{i}") for i in range(3)]
    before = [snapshot(s) for s in services]
    items = [{"service_id": str(s.pk), **GOOD} for s in services]
    items[1] = {**items[1], "available": 20, "maximum": 10}
    items[2] = {**items[2], "available": -5}
    response = bulk(client, items)
    assert response.status_code == 400
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"/items/1/available", "/items/2/available"}
    assert [snapshot(s) for s in services] == before


def test_bulk_rule_errors_point_at_items(client, make_service, organisation):
    service = make_service(organisation)
    past = (timezone.now() - timedelta(days=1)).isoformat()
    response = bulk(
        client,
        [
            {"service_id": str(service.pk), **GOOD},
            {"service_id": str(service.pk), **GOOD, "valid_until": past},
            {"service_id": "00000000-0000-0000-0000-000000000000", **GOOD},
        ],
    )
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"/items/1/valid_until"}
    response = bulk(
        client,
        [
            {"service_id": str(service.pk), **GOOD},
            {"service_id": str(service.pk), **GOOD},
            {"service_id": "00000000-0000-0000-0000-000000000000", **GOOD},
        ],
    )
    # A service repeated in the batch, or one that does not exist: rules no schema states.
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"/items/1/service_id", "/items/2/service_id"}
    assert Capacity.objects.get(service=service).version == 1


def test_bulk_with_another_organisations_service_is_409_and_writes_nothing(
    client, make_service, organisation, make_organisation
):
    mine = make_service(organisation)
    theirs = make_service(make_organisation())
    response = bulk(
        client,
        [{"service_id": str(mine.pk), **GOOD}, {"service_id": str(theirs.pk), **GOOD}],
    )
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/wrong-party"
    assert response.json()["errors"] == [
        {"pointer": "/items/1/service_id", "detail": "Not a service of yours."}
    ]
    assert Capacity.objects.get(service=mine).version == 1


def test_bulk_over_500_items_is_413(client, make_service, organisation):
    service = make_service(organisation)
    response = bulk(client, [{"service_id": str(service.pk), **GOOD}] * 501)
    assert response.status_code == 413
    assert response.json()["errors"][0]["pointer"] == "/items"
    assert Capacity.objects.get(service=service).version == 1


def test_bulk_of_500_items_is_accepted(client, make_service, organisation):
    services = [make_service(organisation, name=f"S{i}", locations=[]) for i in range(500)]
    response = bulk(client, [{"service_id": str(s.pk), **GOOD} for s in services])
    assert response.status_code == 200
    assert Capacity.objects.filter(version=2).count() == 500


def test_empty_or_malformed_batch_is_400(client):
    assert bulk(client, []).status_code == 400
    response = client.post("/api/v1/capacity/bulk", {"things": []}, format="json")
    assert response.status_code == 400
    assert {e["pointer"] for e in response.json()["errors"]} == {"/things"}
