"""What outlives a person's consent, attacked from a seized database: after revocation, expiry
or retention, nothing in any table may still say who recorded the consent, why in words, the
claim code, or confirm a guessed request body. While the data exists, the parties still get
the staff reference and the purpose note back."""

import copy
import hashlib
import json
import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from api.idempotency import fingerprint
from api.models import IdempotencyKey
from api.retention import retention_run
from referrals.models import Consent, Referral
from referrals.services import consents_destroy_expired, referrals_expire_overdue
from tests.referrals.conftest import act, database_text

URL = "/api/v1/referrals"


def guessed_fingerprint(body: dict) -> str:
    """The attacker's guess, hashed the way the request was fingerprinted before it was keyed."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"POST {URL}\n{canonical}".encode()).hexdigest()


@pytest.fixture
def canaries():
    return {name: f"{name}-{uuid.uuid4().hex[:12]}" for name in ("staff", "note")}


@pytest.fixture
def consented(sender, payload, canaries):
    """A referral whose consent names a staff member and a purpose note, sent with a key."""
    body = payload(consent={"recorded_by": canaries["staff"], "purpose_note": canaries["note"]})
    response = sender.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)
    assert response.status_code == 201, response.content
    return body, response.json()


class TestConsentCodes:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("purpose", "Sexual health appointment for Mia"),
            ("purpose", "SEXUAL-HEALTH"),
            ("wording_version", "read aloud to Mia at the flat"),
            ("wording_version", "2026-10 pt"),
            ("wording_version", "v" + "1" * 30),
        ],
    )
    def test_free_text_is_refused(self, field, value, sender, payload):
        response = sender.post(URL, payload(consent={field: value}), format="json")
        assert response.status_code == 400
        assert response.json()["errors"][0]["pointer"] == f"/consent/{field}"
        assert not Referral.objects.exists()

    @pytest.mark.parametrize("version", ["2026-10", "v3", "1.2", "2026-10-01"])
    def test_version_tokens_are_accepted(self, version, sender, payload):
        response = sender.post(URL, payload(consent={"wording_version": version}), format="json")
        assert response.status_code == 201, response.content

    @pytest.mark.parametrize(
        ("column", "value"),
        [("purpose", "Mia's abortion"), ("wording_version", "told at the flat")],
    )
    def test_the_database_refuses_free_text_too(self, column, value, consented):
        """The referral insert is raw SQL: a constraint, not a serializer, holds the line."""
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE referrals_consent SET {column} = %s WHERE referral_id = %s",
                [value, consented[1]["id"]],
            )


class TestEncryptedConsentWords:
    def test_the_parties_get_them_back_while_the_data_exists(
        self, consented, sender, receiver, canaries
    ):
        rid = consented[1]["id"]
        for client in (sender, receiver):
            consent = client.get(f"{URL}/{rid}").json()["consent"]
            assert consent["recorded_by"] == canaries["staff"]
            assert consent["purpose"] == "sexual-health"
            assert consent["purpose_note"] == canaries["note"]
        without_note = copy.deepcopy(consented[0])
        del without_note["consent"]["purpose_note"]
        other = sender.post(URL, without_note, format="json").json()["id"]
        assert "purpose_note" not in receiver.get(f"{URL}/{other}").json()["consent"]

    def test_they_are_only_ever_stored_encrypted(self, consented, canaries):
        stored = database_text()
        for canary in canaries.values():
            assert canary not in stored
            assert canary.encode().hex() not in stored
        consent = Consent.objects.values().get(referral_id=consented[1]["id"])
        assert "recorded_by" not in consent
        assert consent["purpose"] == "sexual-health"


def assert_nothing_outlives(created, body, canaries):
    """The seized database after destruction: no words, no claim code, no key row whose
    fingerprint could confirm a guessed body."""
    stored = database_text()
    for canary in canaries.values():
        assert canary not in stored
    assert created["claim_code"] not in stored
    assert guessed_fingerprint(body) not in stored
    assert not IdempotencyKey.objects.filter(object_id=created["id"]).exists()
    assert Referral.objects.get(pk=created["id"]).claim_code is None


class TestDestruction:
    def test_revocation(self, consented, sender, receiver, canaries):
        body, created = consented
        assert IdempotencyKey.objects.filter(object_id=created["id"]).count() == 1
        response = sender.post(f"{URL}/{created['id']}/consent/revoke")
        assert response.json()["claim_code"] is None
        assert_nothing_outlives(created, body, canaries)
        claim = receiver.get(f"{URL}/claim/{created['claim_code']}")
        assert claim.status_code == 404

    def test_consent_expiry(self, consented, canaries):
        body, created = consented
        Consent.objects.filter(referral_id=created["id"]).update(expires_at=timezone.now())
        assert consents_destroy_expired() == 1
        assert_nothing_outlives(created, body, canaries)

    def test_retention(self, consented, receiver, canaries):
        body, created = consented
        act(receiver, created["id"], "receive")
        act(receiver, created["id"], "decline", body={"reason": "no_capacity"})
        Referral.objects.filter(pk=created["id"]).update(closed=timezone.now() - timedelta(31))
        assert retention_run("referral_personal_data") == 1
        assert_nothing_outlives(created, body, canaries)

    def test_other_referrals_keep_their_keys(self, consented, sender, payload):
        other = sender.post(URL, payload(), format="json", HTTP_IDEMPOTENCY_KEY="other-key")
        sender.post(f"{URL}/{consented[1]['id']}/consent/revoke")
        assert IdempotencyKey.objects.get(key="other-key").object_id == uuid.UUID(
            other.json()["id"]
        )


class TestIdempotencyFingerprint:
    def test_a_guessed_body_is_not_confirmed_by_the_stored_fingerprint(self, consented):
        body, created = consented
        stored = IdempotencyKey.objects.get(object_id=created["id"]).request_fingerprint
        assert stored != guessed_fingerprint(body)
        assert guessed_fingerprint(body) not in database_text()

    def test_it_is_keyed_by_the_server_secret(self, payload, settings):
        def fingerprint_of(body):
            request = APIRequestFactory().post(URL, body, format="json")
            return fingerprint(Request(request, parsers=[JSONParser()]))

        body = payload()
        first = fingerprint_of(body)
        assert fingerprint_of(json.loads(json.dumps(body))) == first
        assert fingerprint_of(payload(urgency="urgent")) != first
        settings.SECRET_KEY = "another-server-" + uuid.uuid4().hex
        assert fingerprint_of(body) != first
        assert len(first) == 64


class TestClaimCodes:
    @pytest.mark.parametrize(
        ("steps", "side"),
        [
            ((("receive", None), ("decline", {"reason": "no_capacity"})), "receiver"),
            (
                (
                    ("receive", None),
                    ("accept", None),
                    ("start", None),
                    ("complete", {"outcome": "service_provided"}),
                ),
                "receiver",
            ),
            ((("cancel", None),), "sender"),
        ],
        ids=["declined", "completed", "cancelled"],
    )
    def test_cleared_when_the_referral_closes(self, steps, side, create_referral, sender, receiver):
        created = create_referral()
        client = receiver if side == "receiver" else sender
        for action, body in steps:
            response = act(client, created["id"], action, body=body)
            assert response.status_code == 200, response.content
        assert response.json()["claim_code"] is None
        assert Referral.objects.get(pk=created["id"]).claim_code is None
        assert created["claim_code"] not in database_text()
        listed = sender.get(f"{URL}?box=outbox").json()["results"][0]
        assert listed["claim_code"] is None
        unknown = receiver.get(f"{URL}/claim/ZZZZZZZZ")
        probe = receiver.get(f"{URL}/claim/{created['claim_code']}")
        assert probe.status_code == unknown.status_code == 404
        assert probe.json()["detail"] == unknown.json()["detail"]

    def test_cleared_when_the_referral_expires(self, create_referral, receiver):
        created = create_referral()
        Referral.objects.filter(pk=created["id"]).update(respond_by=timezone.now())
        assert referrals_expire_overdue() == 1
        assert Referral.objects.get(pk=created["id"]).claim_code is None
        assert receiver.get(f"{URL}/claim/{created['claim_code']}").status_code == 404

    def test_kept_while_the_referral_is_open(self, create_referral, receiver):
        created = create_referral()
        for action in ("receive", "accept", "hold", "resume", "start"):
            assert (
                act(receiver, created["id"], action).json()["claim_code"] == (created["claim_code"])
            )
        assert receiver.get(f"{URL}/claim/{created['claim_code']}").status_code == 200
