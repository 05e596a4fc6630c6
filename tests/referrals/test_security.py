"""Authorization from the attacker's side: a third organisation probing every referral endpoint,
tokens without the referral scopes, and bodies that try to set what they may not."""

import uuid

import pytest

from referrals.models import PersonalData, Referral
from referrals.services import TRANSITIONS
from tests.conftest import ALL_SCOPES

VALID_BODIES = {"decline": {"reason": "other"}, "complete": {"outcome": "other"}}
# (method, path suffix, body) for every endpoint that takes a referral id.
ENDPOINTS = [
    ("get", "", None),
    ("get", "/notes", None),
    ("post", "/notes", {"text": "probe"}),
    ("get", "/timeline", None),
    ("post", "/consent/revoke", {}),
    *[("post", f"/{action}", VALID_BODIES.get(action, {})) for action in TRANSITIONS],
]
METHODS_NOT_ALLOWED = [("put", ""), ("patch", ""), ("delete", "")]


def call(client, method, path, body):
    kwargs = {"format": "json", "HTTP_IF_MATCH": "*"} if method != "get" else {}
    return (
        getattr(client, method)(path, body, **kwargs)
        if body is not None
        else getattr(client, method)(path, **kwargs)
    )


def normalised(response, referral_id) -> dict:
    body = response.json()
    body["instance"] = body["instance"].replace(str(referral_id), "ID")
    return body


@pytest.mark.parametrize(("method", "suffix", "body"), ENDPOINTS)
def test_third_organisation_gets_the_unknown_id_answer(
    method, suffix, body, create_referral, stranger
):
    rid = create_referral()["id"]
    unknown = uuid.uuid4()
    before = Referral.objects.values().get(pk=rid)

    probe = call(stranger, method, f"/api/v1/referrals/{rid}{suffix}", body)
    missing = call(stranger, method, f"/api/v1/referrals/{unknown}{suffix}", body)

    assert probe.status_code == missing.status_code == 404
    assert probe["Content-Type"] == missing["Content-Type"] == "application/problem+json"
    assert normalised(probe, rid) == normalised(missing, unknown)
    assert set(probe.headers) - {"X-Request-ID"} == set(missing.headers) - {"X-Request-ID"}
    assert Referral.objects.values().get(pk=rid) == before
    assert PersonalData.objects.filter(referral_id=rid).count() == 7


@pytest.mark.parametrize(("method", "suffix"), METHODS_NOT_ALLOWED)
def test_unsupported_methods_look_the_same_for_a_stranger(
    method, suffix, create_referral, stranger
):
    rid = create_referral()["id"]
    probe = getattr(stranger, method)(f"/api/v1/referrals/{rid}{suffix}")
    missing = getattr(stranger, method)(f"/api/v1/referrals/{uuid.uuid4()}{suffix}")
    assert probe.status_code == missing.status_code
    assert probe.json()["detail"] == missing.json()["detail"]


def test_lists_never_contain_it(create_referral, stranger):
    create_referral()
    for box in ("inbox", "outbox"):
        response = stranger.get(f"/api/v1/referrals?box={box}")
        assert response.status_code == 200
        assert response.json()["results"] == []


def test_claim_code_lookup_by_a_stranger(create_referral, stranger):
    code = create_referral()["claim_code"]
    probe = stranger.get(f"/api/v1/referrals/claim/{code}")
    missing = stranger.get("/api/v1/referrals/claim/ZZZZZZZZ")
    assert probe.status_code == 404
    assert normalised(probe, code) == normalised(missing, "ZZZZZZZZ")


READ_ENDPOINTS = [("get", s, b) for m, s, b in ENDPOINTS if m == "get"]
WRITE_ENDPOINTS = [(m, s, b) for m, s, b in ENDPOINTS if m == "post"]


@pytest.mark.parametrize(("method", "suffix", "body"), READ_ENDPOINTS)
def test_reads_need_referrals_read(method, suffix, body, create_referral, api_client_for):
    rid = create_referral()["id"]
    receiver = Referral.objects.get(pk=rid).receiver
    client = api_client_for(receiver, [s for s in ALL_SCOPES if s != "referrals:read"])
    for path in (f"/api/v1/referrals/{rid}{suffix}", "/api/v1/referrals"):
        response = call(client, method, path, body)
        assert response.status_code == 403
        assert response.json()["missing_scopes"] == ["referrals:read"]


@pytest.mark.parametrize(("method", "suffix", "body"), WRITE_ENDPOINTS)
def test_writes_need_referrals_write(method, suffix, body, create_referral, api_client_for):
    rid = create_referral()["id"]
    referral = Referral.objects.get(pk=rid)
    for organisation in (referral.sender, referral.receiver):
        client = api_client_for(organisation, ["referrals:read"])
        response = call(client, method, f"/api/v1/referrals/{rid}{suffix}", body)
        assert response.status_code == 403
        assert response.json()["missing_scopes"] == ["referrals:write"]
    assert Referral.objects.get(pk=rid).version == 1


def test_create_needs_referrals_write(payload, sender_org, api_client_for):
    client = api_client_for(sender_org, ["referrals:read"])
    response = client.post("/api/v1/referrals", payload(), format="json")
    assert response.status_code == 403
    assert Referral.objects.count() == 0


def test_anonymous_gets_401(create_referral, anonymous):
    rid = create_referral()["id"]
    assert anonymous.get(f"/api/v1/referrals/{rid}").status_code == 401
    assert anonymous.get("/api/v1/referrals").status_code == 401


@pytest.mark.parametrize(
    ("suffix", "body"),
    [
        ("/accept", {"status": "completed"}),
        ("/receive", {"sender": "00000000-0000-0000-0000-000000000001"}),
        ("/complete", {"outcome": "service_provided", "receiver": "x"}),
        ("/decline", {"reason": "other", "version": 1}),
        ("/consent/revoke", {"personal_data": "present"}),
    ],
)
def test_bodies_setting_read_only_fields_change_nothing(
    suffix, body, create_referral, sender, receiver
):
    rid = create_referral()["id"]
    before = Referral.objects.values().get(pk=rid)
    client = sender if suffix == "/consent/revoke" else receiver
    response = client.post(
        f"/api/v1/referrals/{rid}{suffix}", body, format="json", HTTP_IF_MATCH="*"
    )
    assert response.status_code == 400
    assert Referral.objects.values().get(pk=rid) == before
    assert PersonalData.objects.filter(referral_id=rid).count() == 7
