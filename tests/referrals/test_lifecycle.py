"""The referral lifecycle: every legal transition, every illegal one, each side's rights,
If-Match, and the scheduled expiry."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api.models import Event
from referrals.models import Referral, Status, TimelineEntry
from referrals.services import TRANSITIONS, referrals_expire_overdue
from referrals.tasks import expire_overdue
from tests.referrals.conftest import act, timeline

BODIES = {
    "decline": {"reason": "no_capacity", "note": "Full until March."},
    "complete": {"outcome": "service_provided"},
}

LEGAL = [
    (action, source, transition.target)
    for action, transition in TRANSITIONS.items()
    for source in sorted(transition.sources)
]
ILLEGAL = [
    (action, status)
    for action, transition in TRANSITIONS.items()
    for status in Status.values
    if status not in transition.sources
]


def client_for(action, sender, receiver):
    return sender if TRANSITIONS[action].side == "sender" else receiver


def set_status(referral_id, status):
    Referral.objects.filter(pk=referral_id).update(status=status)


@pytest.mark.parametrize(("action", "source", "target"), LEGAL)
def test_legal_transition(action, source, target, create_referral, sender, receiver):
    referral = create_referral()
    set_status(referral["id"], source)
    client = client_for(action, sender, receiver)
    before = Event.objects.count()

    response = act(client, referral["id"], action, body=BODIES.get(action))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == target
    assert body["version"] == 2
    assert response["ETag"] == '"2"'
    stored = Referral.objects.get(pk=referral["id"])
    assert stored.status == target
    assert (stored.closed is not None) == (target in {"declined", "completed", "cancelled"})
    entry = TimelineEntry.objects.filter(referral_id=referral["id"]).last()
    assert (entry.kind, entry.from_status, entry.to_status) == ("status_changed", source, target)
    events = Event.objects.order_by("created")[before:]
    assert {e.type for e in events} == {"referral.status_changed"}
    assert {e.organisation_id for e in events} == {stored.sender_id, stored.receiver_id}
    assert set(events[0].data) == {
        "referral_id",
        "sender_id",
        "receiver_id",
        "status",
        "at",
        "previous_status",
    }


@pytest.mark.parametrize(("action", "status"), ILLEGAL)
def test_illegal_transition_is_409_with_allowed_actions(
    action, status, create_referral, sender, receiver
):
    referral = create_referral()
    set_status(referral["id"], status)
    client = client_for(action, sender, receiver)
    side = TRANSITIONS[action].side

    response = act(client, referral["id"], action, body=BODIES.get(action))

    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/illegal-transition"
    expected = [name for name, t in TRANSITIONS.items() if t.side == side and status in t.sources]
    assert problem["allowed_actions"] == expected
    assert Referral.objects.get(pk=referral["id"]).status == status


@pytest.mark.parametrize("action", list(TRANSITIONS))
def test_other_side_gets_409_wrong_party(action, create_referral, sender, receiver):
    """A conflict with the caller's part in the referral, not a 403: the token holds every
    scope, and what refuses the request is which side the caller is on."""
    referral = create_referral()
    source = sorted(TRANSITIONS[action].sources)[0]
    set_status(referral["id"], source)
    side = "receiver" if TRANSITIONS[action].side == "sender" else "sender"
    wrong = receiver if side == "receiver" else sender

    response = act(wrong, referral["id"], action, body=BODIES.get(action))

    assert response.status_code == 409, response.content
    problem = response.json()
    assert problem["type"] == "/problems/wrong-party"
    expected = [name for name, t in TRANSITIONS.items() if t.side == side and source in t.sources]
    assert problem["allowed_actions"] == expected
    assert Referral.objects.get(pk=referral["id"]).status == source


def test_full_closed_loop_through_the_api(create_referral, sender, receiver):
    referral = create_referral()
    rid = referral["id"]
    for action in ("receive", "accept", "hold", "resume", "start"):
        assert act(receiver, rid, action).status_code == 200
    response = act(receiver, rid, "complete", body={"outcome": "referred_on"})
    assert response.json()["status"] == "completed"
    assert response.json()["outcome"] == "referred_on"
    entries = timeline(sender, rid)
    assert [e["to_status"] for e in entries] == [
        "requested",
        "received",
        "accepted",
        "on_hold",
        "accepted",
        "in_progress",
        "completed",
    ]
    assert entries[-1]["code"] == "referred_on"


def test_decline_records_reason_and_encrypted_note(create_referral, receiver, sender):
    rid = create_referral()["id"]
    act(receiver, rid, "receive")
    response = act(receiver, rid, "decline", body={"reason": "out_of_area", "note": "Try Porto."})
    assert response.json()["decline_reason"] == "out_of_area"
    detail = sender.get(f"/api/v1/referrals/{rid}").json()
    assert detail["decline_note"] == "Try Porto."
    assert detail["allowed_actions"] == []


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("decline", {}, "reason"),
        ("decline", {"reason": "too_busy"}, "reason"),
        ("complete", {}, "outcome"),
        ("complete", {"outcome": "great"}, "outcome"),
        ("accept", {"status": "completed"}, "status"),
        ("accept", {"note": "hi"}, "note"),
    ],
)
def test_transition_bodies_are_validated(action, body, field, create_referral, sender, receiver):
    rid = create_referral()["id"]
    set_status(rid, sorted(TRANSITIONS[action].sources)[0])
    response = act(client_for(action, sender, receiver), rid, action, body=body)
    assert response.status_code == 400
    assert [e["pointer"] for e in response.json()["errors"]] == [f"/{field}"]
    assert Referral.objects.get(pk=rid).version == 1


class TestIfMatch:
    def test_required(self, create_referral, receiver):
        rid = create_referral()["id"]
        response = receiver.post(f"/api/v1/referrals/{rid}/receive", {}, format="json")
        assert response.status_code == 428
        assert response.json()["type"] == "/problems/precondition-required"
        assert response.json()["etag"] == '"1"'
        assert Referral.objects.get(pk=rid).status == "requested"

    def test_stale_etag_is_412(self, create_referral, receiver):
        rid = create_referral()["id"]
        assert act(receiver, rid, "receive", etag='"1"').status_code == 200
        response = act(receiver, rid, "accept", etag='"1"')
        assert response.status_code == 412
        assert response.json()["type"] == "/problems/precondition-failed"
        assert response.json()["etag"] == '"2"'
        assert response.json()["status_now"] == "received"
        assert Referral.objects.get(pk=rid).status == "received"

    @pytest.mark.parametrize("etag", ["2", "1", '"2', "W/2", "", '"2",'])
    def test_an_unquoted_etag_is_malformed_not_stale(self, create_referral, receiver, etag):
        rid = create_referral()["id"]
        assert act(receiver, rid, "receive", etag='"1"').status_code == 200
        response = act(receiver, rid, "accept", etag=etag)
        assert response.status_code == 400, response.content
        assert response.json()["type"] == "/problems/malformed-if-match"
        assert Referral.objects.get(pk=rid).status == "received"

    @pytest.mark.parametrize("etag", ['"2"', ' "9" , "2" ', "*", 'W/"7", "2"'])
    def test_well_formed_lists_and_the_star_are_read(self, create_referral, receiver, etag):
        rid = create_referral()["id"]
        assert act(receiver, rid, "receive", etag='"1"').status_code == 200
        assert act(receiver, rid, "accept", etag=etag).status_code == 200

    def test_current_etag_from_a_get_works(self, create_referral, receiver):
        rid = create_referral()["id"]
        etag = receiver.get(f"/api/v1/referrals/{rid}")["ETag"]
        assert act(receiver, rid, "receive", etag=etag).status_code == 200

    def test_star_and_lists_match(self, create_referral, receiver):
        rid = create_referral()["id"]
        assert act(receiver, rid, "receive", etag="*").status_code == 200
        assert act(receiver, rid, "accept", etag='"7", "2"').status_code == 200

    def test_weak_etag_never_matches(self, create_referral, receiver):
        rid = create_referral()["id"]
        assert act(receiver, rid, "receive", etag='W/"1"').status_code == 412


class TestExpiry:
    def test_overdue_open_referrals_expire(self, create_referral, receiver):
        overdue = create_referral()["id"]
        received = create_referral()["id"]
        act(receiver, received, "receive")
        accepted = create_referral()["id"]
        for action in ("receive", "accept"):
            act(receiver, accepted, action)
        fresh = create_referral()["id"]
        past = timezone.now() - timedelta(minutes=1)
        Referral.objects.filter(pk__in=[overdue, received, accepted]).update(respond_by=past)

        assert expire_overdue() == 2

        statuses = {str(pk): s for pk, s in Referral.objects.values_list("pk", "status")}
        assert statuses == {
            overdue: "expired",
            received: "expired",
            accepted: "accepted",
            fresh: "requested",
        }
        entry = TimelineEntry.objects.filter(referral_id=received).last()
        assert (entry.from_status, entry.to_status, entry.actor_id) == (
            "received",
            "expired",
            None,
        )
        assert Referral.objects.get(pk=overdue).closed is not None
        assert Event.objects.filter(type="referral.status_changed").count() >= 4
        assert referrals_expire_overdue() == 0

    def test_batches(self, create_referral):
        ids = [create_referral()["id"] for _ in range(5)]
        Referral.objects.filter(pk__in=ids).update(respond_by=timezone.now())
        assert referrals_expire_overdue(batch=2) == 5
        assert set(Referral.objects.values_list("status", flat=True)) == {"expired"}


def test_default_respond_by_follows_urgency(create_referral):
    now = timezone.now()
    for urgency, days in (("urgent", 1), ("soon", 3), ("routine", 10)):
        body = create_referral(urgency=urgency)
        referral = Referral.objects.get(pk=body["id"])
        assert abs(referral.respond_by - now - timedelta(days=days)) < timedelta(minutes=1)
