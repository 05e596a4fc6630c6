"""Creating a referral: partnership gating, consent rules, minimal data, unknown fields."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from api.models import Event
from partners.models import Partnership, Service
from referrals import services
from referrals.api.serializers import ReferralCreateSerializer
from referrals.models import (
    Consent,
    KeyEpoch,
    PersonalData,
    Referral,
    ReferralKey,
    TimelineEntry,
)
from referrals.services import CLAIM_ALPHABET


def post(client, body, **headers):
    return client.post("/api/v1/referrals", body, format="json", **headers)


def test_create_answers_metadata_only(sender, payload, receiver_org, sender_org):
    response = post(sender, payload())

    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"] == f"/api/v1/referrals/{body['id']}"
    assert response["ETag"] == '"1"'
    assert body["status"] == "requested"
    assert body["personal_data"] == "present"
    assert body["receiver"] == {"id": str(receiver_org.pk), "name": receiver_org.name}
    assert body["sender"]["id"] == str(sender_org.pk)
    for personal in ("person", "safe_contact", "contact", "reason", "health", "legal"):
        assert personal not in body
    assert "Mia" not in response.content.decode()
    assert len(body["claim_code"]) == 8
    assert set(body["claim_code"]) <= set(CLAIM_ALPHABET)
    assert not set(body["claim_code"]) & set("01OIL")


def test_create_stores_ciphertext_key_consent_timeline_and_event(sender, payload, receiver_org):
    body = post(sender, payload()).json()
    referral = Referral.objects.get(pk=body["id"])

    assert Consent.objects.get(referral=referral).purpose == "sexual-health"
    key = ReferralKey.objects.get(referral=referral)
    assert (key.epoch, key.kid) == (KeyEpoch.objects.get(retired=None).pk, "")
    fields = set(PersonalData.objects.filter(referral=referral).values_list("field", flat=True))
    assert fields == {"person", "safe_contact", "contact", "reason", "health", "legal", "consent"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ciphertext FROM referrals_personaldata WHERE referral_id = %s", [referral.pk]
        )
        blobs = [bytes(row[0]) for row in cursor.fetchall()]
    assert all(b"Mia" not in blob and b"PrEP" not in blob for blob in blobs)
    assert all(b"staff-17" not in blob for blob in blobs)
    entry = TimelineEntry.objects.get(referral=referral)
    assert (entry.kind, entry.to_status, str(entry.actor_id)) == (
        "created",
        "requested",
        body["sender"]["id"],
    )
    event = Event.objects.get(type="referral.received")
    assert event.organisation_id == receiver_org.pk
    assert set(event.data) == {"referral_id", "sender_id", "receiver_id", "status", "at"}


def test_a_claim_code_collision_is_retried_with_a_fresh_code(sender, payload, monkeypatch):
    """The code generator is forced to repeat a code in use: the insert finds the conflict, and
    the next code is taken; the first referral keeps its code."""
    first = post(sender, payload()).json()
    codes = iter([first["claim_code"], first["claim_code"], "HJKMNPQR"])
    monkeypatch.setattr(services, "_new_claim_code", lambda: next(codes))

    response = post(sender, payload())

    assert response.status_code == 201, response.content
    assert response.json()["claim_code"] == "HJKMNPQR"
    assert Referral.objects.get(pk=first["id"]).claim_code == first["claim_code"]
    assert Referral.objects.count() == 2
    assert Event.objects.filter(type="referral.received").count() == 2


def test_no_free_claim_code_raises_and_writes_nothing(sender, payload, sender_org, monkeypatch):
    """Five collisions in a row end in IntegrityError, inside one transaction: no referral, no
    personal data, no event is left behind."""
    taken = post(sender, payload()).json()["claim_code"]
    monkeypatch.setattr(services, "_new_claim_code", lambda: taken)
    data = ReferralCreateSerializer(data=payload())
    assert data.is_valid(), data.errors

    with pytest.raises(IntegrityError, match="no free claim code"), transaction.atomic():
        services.referral_create(sender=sender_org, data=data.validated_data)

    assert Referral.objects.count() == 1
    assert PersonalData.objects.values("referral").distinct().count() == 1
    assert Event.objects.filter(type="referral.received").count() == 1


def test_minimal_referral(sender, payload):
    body = payload(consent={"data_categories": []})
    for optional in ("contact", "health", "legal", "needs"):
        body.pop(optional)
    body["person"] = {"name": "M"}
    body["safe_contact"] = {"do_not_contact": True}
    assert post(sender, body).status_code == 201


class TestPartnershipGating:
    def test_no_partnership(self, sender, receiver_org, service):
        from tests.referrals.conftest import referral_payload

        response = post(sender, referral_payload(receiver_org, service))
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"] == "/problems/partnership-required"
        assert problem["rule"] == "partnership_exists"
        assert Referral.objects.count() == 0

    @pytest.mark.parametrize("status", ["proposed", "suspended", "ended", "declined"])
    def test_inactive_partnership(self, status, sender, payload, partnership):
        Partnership.objects.filter(pk=partnership.pk).update(status=status)
        response = post(sender, payload())
        assert response.status_code == 422
        assert response.json()["rule"] == "partnership_active"
        assert response.json()["partnership_status"] == status
        assert status in response.json()["detail"]
        assert Referral.objects.count() == 0

    def test_partnership_works_in_either_direction(self, payload, partnership, api_client_for):
        Partnership.objects.filter(pk=partnership.pk).update(
            proposer=partnership.partner, partner=partnership.proposer
        )
        client = api_client_for(partnership.proposer)
        assert post(client, payload()).status_code == 201

    def test_category_not_allowed_by_partnership(self, sender, payload, partnership):
        partnership.data_categories = ["contact", "notes"]
        partnership.save()
        response = post(sender, payload())
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"] == "/problems/category-not-allowed"
        assert problem["categories"] == ["health", "legal"]
        assert "health" in problem["detail"] and "legal" in problem["detail"]
        assert Referral.objects.count() == 0


class TestConsentRules:
    def test_recipient_must_be_the_receiver(self, sender, payload, stranger_org):
        response = post(sender, payload(consent={"recipient": str(stranger_org.pk)}))
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/consent/recipient"

    def test_consent_is_required(self, sender, payload):
        body = payload()
        del body["consent"]
        response = post(sender, body)
        assert response.status_code == 400
        assert response.json()["errors"][0]["pointer"] == "/consent"

    def test_consented_must_be_true(self, sender, payload):
        response = post(sender, payload(consent={"consented": False}))
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/consent/consented"

    def test_default_expiry_is_90_days(self, sender, payload):
        body = payload()
        referral = Referral.objects.get(pk=post(sender, body).json()["id"])
        consent = referral.consent
        assert consent.expires_at - consent.given_at == timedelta(days=90)

    def test_expiry_at_most_365_days(self, sender, payload):
        given = timezone.now() - timedelta(minutes=1)
        ok = payload(
            consent={
                "given_at": given.isoformat(),
                "expires_at": (given + timedelta(days=365)).isoformat(),
            }
        )
        assert post(sender, ok).status_code == 201
        too_long = payload(
            consent={
                "given_at": given.isoformat(),
                "expires_at": (given + timedelta(days=366)).isoformat(),
            }
        )
        response = post(sender, too_long)
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/consent/expires_at"

    def test_given_in_the_future_is_refused(self, sender, payload):
        future = (timezone.now() + timedelta(hours=1)).isoformat()
        response = post(sender, payload(consent={"given_at": future}))
        assert response.json()["errors"][0]["pointer"] == "/consent/given_at"

    def test_fields_outside_the_consented_categories_are_refused(self, sender, payload):
        response = post(sender, payload(consent={"data_categories": ["notes"]}))
        assert response.status_code == 422
        pointers = [e["pointer"] for e in response.json()["errors"]]
        assert pointers == ["/contact", "/health", "/legal"]
        assert Referral.objects.count() == 0

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("method", "telepathy"),
            ("data_categories", ["immigration"]),
            ("language", "not a tag!"),
            ("by_representative", None),
        ],
    )
    def test_consent_shape(self, field, value, sender, payload):
        response = post(sender, payload(consent={field: value}))
        assert response.status_code == 400
        assert response.json()["errors"][0]["pointer"].startswith(f"/consent/{field}")


class TestUnknownAndReadOnlyFields:
    @pytest.mark.parametrize(
        "field",
        [
            "immigration_status",
            "nationality",
            "passport_number",
            "visa_number",
            "alien_number",
            "criminal_record",
            "sex_work_history",
            "date_of_birth",
        ],
    )
    def test_top_level(self, field, sender, payload):
        body = payload()
        body[field] = "anything"
        response = post(sender, body)
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["errors"] == [
            {"pointer": f"/{field}", "detail": "This field is not accepted here."}
        ]
        assert Referral.objects.count() == 0

    @pytest.mark.parametrize(
        ("group", "field"),
        [
            ("person", "nationality"),
            ("person", "immigration_status"),
            ("safe_contact", "home_address"),
            ("contact", "passport"),
            ("consent", "signature"),
        ],
    )
    def test_nested(self, group, field, sender, payload):
        body = payload()
        body[group][field] = "anything"
        response = post(sender, body)
        assert response.status_code == 400
        assert response.json()["errors"][0]["pointer"] == f"/{group}/{field}"
        assert Referral.objects.count() == 0

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("sender", "00000000-0000-0000-0000-000000000001"),
            ("status", "completed"),
            ("id", "00000000-0000-0000-0000-000000000002"),
            ("claim_code", "AAAAAAAA"),
            ("version", 9),
            ("personal_data", "revoked"),
            ("created", "2020-01-01T00:00:00Z"),
            ("partnership", "00000000-0000-0000-0000-000000000003"),
        ],
    )
    def test_read_only_fields_are_refused(self, field, value, sender, payload):
        body = payload()
        body[field] = value
        response = post(sender, body)
        assert response.status_code == 400
        assert response.json()["errors"][0]["pointer"] == f"/{field}"
        assert Referral.objects.count() == 0


class TestOtherValidation:
    def test_service_must_belong_to_receiver(self, sender, payload, stranger_org):
        other = Service.objects.create(organisation=stranger_org, name="Elsewhere")
        response = post(sender, payload(service=str(other.pk)))
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/service"

    def test_inactive_service(self, sender, payload, service):
        Service.objects.filter(pk=service.pk).update(status="inactive")
        assert post(sender, payload()).json()["errors"][0]["pointer"] == "/service"

    def test_unknown_receiver(self, sender, payload):
        response = post(sender, payload(receiver="00000000-0000-0000-0000-000000000009"))
        assert response.json()["errors"][0]["pointer"] == "/receiver"

    def test_an_empty_contact_is_a_rule_not_a_schema_error(self, sender, payload):
        response = post(sender, payload(contact={}))
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/contact"

    def test_unknown_taxonomy_code(self, sender, payload):
        response = post(sender, payload(needs=["sti-testing", "no-such-need"]))
        assert response.status_code == 422
        assert "no-such-need" in response.json()["detail"]

    def test_safe_contact_needs_a_channel_or_do_not_contact(self, sender, payload):
        response = post(sender, payload(safe_contact={"do_not_contact": False}))
        assert response.json()["errors"][0]["pointer"] == "/safe_contact/channels"
        response = post(sender, payload(safe_contact={"do_not_contact": True, "channels": ["sms"]}))
        assert response.json()["errors"][0]["pointer"] == "/safe_contact/channels"

    def test_respond_by_in_the_past(self, sender, payload):
        past = (timezone.now() - timedelta(hours=1)).isoformat()
        assert post(sender, payload(respond_by=past)).json()["errors"][0]["pointer"] == (
            "/respond_by"
        )

    def test_cannot_refer_to_yourself(self, sender, payload, sender_org):
        response = post(sender, payload(receiver=str(sender_org.pk)))
        assert response.json()["errors"][0]["pointer"] == "/receiver"

    def test_malformed_json(self, sender):
        response = sender.post("/api/v1/referrals", "{", content_type="application/json")
        assert response.status_code == 400
        assert response.json()["type"] == "/problems/malformed-json"
