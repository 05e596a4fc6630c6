"""PUT and PATCH of a Task drive the REST transitions (same rules, If-Match on the version);
a Consent set inactive is the REST revocation, after which its reads are 410."""

import pytest

from referrals.fhir import codes
from referrals.models import PersonalData, Referral, ReferralKey
from tests.referrals.conftest import act
from tests.referrals.fhir.conftest import get, outcome, patch, put


def replace(path, value):
    return {"op": "replace", "path": path, "value": value}


def status_patch(status, business=None):
    operations = [replace("/status", status)]
    if business:
        operations.append(
            replace(
                "/businessStatus", {"coding": [{"system": codes.REFERRAL_STATUS, "code": business}]}
            )
        )
    return operations


def test_the_whole_lifecycle_through_fhir_matches_the_rest_status(sender, receiver, fhir_create):
    rid = fhir_create()
    steps = [
        (status_patch("requested", "received"), "received", "requested"),
        (status_patch("accepted"), "accepted", "accepted"),
        (status_patch("on-hold"), "on_hold", "on-hold"),
        (status_patch("accepted"), "accepted", "accepted"),
        (status_patch("in-progress"), "in_progress", "in-progress"),
    ]
    for version, (operations, rest, fhir) in enumerate(steps, start=1):
        response = patch(receiver, f"/Task/{rid}", operations, HTTP_IF_MATCH=f'W/"{version}"')
        assert response.status_code == 200, response.content
        assert response.json()["status"] == fhir
        assert response["ETag"] == f'W/"{version + 1}"'
        assert sender.get(f"/api/v1/referrals/{rid}").json()["referral"]["status"] == rest
    done = [
        replace("/status", "completed"),
        {"op": "add", "path": "/output", "value": [{
            "type": {"coding": [{"system": codes.TASK_OUTPUT, "code": "outcome"}]},
            "valueCodeableConcept": {"coding": [{"system": codes.OUTCOME, "code": "service_provided"}]},
        }]},
    ]  # fmt: skip
    response = patch(receiver, f"/Task/{rid}", done, HTTP_IF_MATCH='W/"6"')
    assert response.status_code == 200, response.content
    referral = Referral.objects.get(pk=rid)
    assert (referral.status, referral.outcome, referral.claim_code) == (
        "completed",
        "service_provided",
        None,
    )
    assert (
        response.json()["output"][0]["valueCodeableConcept"]["coding"][0]["code"]
        == "service_provided"
    )


def test_put_of_the_task_as_read_with_a_new_status(receiver, fhir_create):
    rid = fhir_create()
    act(receiver, rid, "receive")
    task = get(receiver, f"/Task/{rid}").json()
    task["status"] = "rejected"
    task["statusReason"] = {
        "coding": [{"system": codes.DECLINE_REASON, "code": "no_capacity"}],
        "text": "Full until March.",
    }
    response = put(receiver, f"/Task/{rid}", task, HTTP_IF_MATCH='W/"2"')
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "rejected"
    assert response.json()["statusReason"]["coding"][0]["code"] == "no_capacity"
    detail = receiver.get(f"/api/v1/referrals/{rid}").json()
    assert detail["decline_note"] == "Full until March."
    assert detail["referral"]["decline_reason"] == "no_capacity"


def test_the_sender_cancels(sender, fhir_create):
    rid = fhir_create()
    response = patch(sender, f"/Task/{rid}", status_patch("cancelled"), HTTP_IF_MATCH='W/"1"')
    assert response.status_code == 200, response.content
    assert Referral.objects.get(pk=rid).status == "cancelled"


def test_if_match_is_required_and_must_be_current(receiver, fhir_create):
    rid = fhir_create()
    body = outcome(patch(receiver, f"/Task/{rid}", status_patch("requested", "received")), 428)
    assert body["issue"][0]["code"] == "required"
    body = outcome(
        patch(
            receiver, f"/Task/{rid}", status_patch("requested", "received"), HTTP_IF_MATCH='W/"7"'
        ),
        412,
    )
    assert body["issue"][0]["code"] == "conflict"
    assert Referral.objects.get(pk=rid).status == "requested"


def test_the_rules_are_the_rest_apis(sender, receiver, fhir_create):
    rid = fhir_create()
    # The sender cannot accept for the receiver; a referral cannot skip "received".
    body = outcome(
        patch(sender, f"/Task/{rid}", status_patch("requested", "received"), HTTP_IF_MATCH='W/"1"'),
        409,
    )
    assert body["issue"][0]["code"] == "business-rule"
    assert body["issue"][0]["details"]["coding"][0]["code"] == "wrong-party"
    body = outcome(
        patch(receiver, f"/Task/{rid}", status_patch("accepted"), HTTP_IF_MATCH='W/"1"'), 409
    )
    assert "receive" in body["issue"][0]["diagnostics"]
    body = outcome(
        patch(receiver, f"/Task/{rid}", status_patch("failed"), HTTP_IF_MATCH='W/"1"'), 422
    )
    assert body["issue"][0]["code"] == "business-rule"


@pytest.mark.parametrize(
    "operations",
    [
        [replace("/owner", {"reference": "Organization/00000000-0000-4000-8000-000000000000"})],
        [replace("/priority", "stat")],
        [{"op": "remove", "path": "/focus"}],
        [replace("/status", "accepted"), replace("/intent", "plan")],
    ],
)
def test_only_the_status_elements_can_change(receiver, fhir_create, operations):
    rid = fhir_create()
    outcome(patch(receiver, f"/Task/{rid}", operations, HTTP_IF_MATCH='W/"1"'), 422)
    assert Referral.objects.get(pk=rid).version == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"op": "replace", "path": "/status"}, 400),
        ([{"op": "move", "from": "/status", "path": "/x"}], 400),
        ([{"op": "test", "path": "/status", "value": "accepted"}], 422),
        ([{"op": "replace", "path": "/statusReason/text", "value": "x"}], 422),
        ([replace("/status", "bogus")], 422),
    ],
)
def test_a_patch_that_cannot_apply_is_refused(receiver, fhir_create, body, status):
    rid = fhir_create()
    outcome(patch(receiver, f"/Task/{rid}", body, HTTP_IF_MATCH='W/"1"'), status)


def test_patch_takes_json_patch_only(receiver, fhir_create):
    rid = fhir_create()
    response = receiver.generic(
        "PATCH", f"/fhir/r4/Task/{rid}", '{"status": "accepted"}', "application/fhir+json"
    )
    outcome(response, 415)


def test_consent_inactive_is_the_revocation_and_reads_turn_410(sender, receiver, fhir_create):
    """Either side records the person's withdrawal, as through REST."""
    rid = fhir_create()
    response = patch(receiver, f"/Consent/{rid}", [replace("/status", "inactive")])
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "inactive"
    assert not PersonalData.objects.filter(referral_id=rid).exists()
    assert not ReferralKey.objects.filter(referral_id=rid).exists()
    for client in (sender, receiver):
        for path in (f"/ServiceRequest/{rid}", f"/Consent/{rid}"):
            body = outcome(get(client, path), 410)
            assert body["issue"][0]["code"] == "deleted"
        assert get(client, f"/Task/{rid}").status_code == 200, "the lifecycle stays readable"
    searched = get(receiver, "/Consent?status=inactive").json()
    assert [entry["resource"]["id"] for entry in searched["entry"]] == [rid]
    assert receiver.get(f"/api/v1/referrals/{rid}").status_code == 410


def test_consent_put_reads_only_the_status_and_never_bounces(sender, fhir_create):
    rid = fhir_create()
    consent = get(sender, f"/Consent/{rid}").json()
    consent["status"] = "inactive"
    consent["dateTime"] = "2020-01-01T00:00:00Z"
    response = put(sender, f"/Consent/{rid}", consent, HTTP_IF_MATCH='W/"99"')
    assert response.status_code == 200, response.content
    assert Referral.objects.get(pk=rid).personal_data == "revoked"
    consent["status"] = "active"
    body = outcome(put(sender, f"/Consent/{rid}", consent), 422)
    assert "new consent" in body["issue"][0]["diagnostics"]


def test_status_map_both_ways_is_the_documented_table():
    rows = {ours: codes.TASK_STATUS[ours] for ours in codes.TASK_STATUS}
    assert rows == {
        "requested": "requested", "received": "requested", "accepted": "accepted",
        "declined": "rejected", "on_hold": "on-hold", "in_progress": "in-progress",
        "completed": "completed", "cancelled": "cancelled", "expired": "failed",
    }  # fmt: skip
    for ours, theirs in rows.items():
        assert codes.status_from_task(theirs, ours) == ours
    assert codes.status_from_task("requested", None) == "requested"
    assert codes.status_from_task("draft", None) is None
