"""The person's own routes (/api/v1/self): a PIN at creation (never answered back, stored only
as a slow hash inside the encrypted data), the exchange of claim code and PIN for a ten-minute
token, the status in their language, who opened their details, withdrawing, and stopping or
changing contact. The attacks on the entry are in test_self_service_attacks.py."""

import hashlib
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone, translation
from rest_framework.test import APIClient

from api.audit.models import AuditEntry
from api.models import Event, IdempotencyKey
from api.retention import retention_run
from referrals import pins
from referrals.api.examples import SELF_STATUS_EXAMPLE
from referrals.models import PersonalData, Referral, SelfServiceLock, SelfServiceToken
from referrals.selectors import STATUS_SENTENCES
from referrals.services import SELF_TOKEN_LIFETIME
from tests.referrals.conftest import PIN, act, database_text, sign_in, timeline

STATUS = "/api/v1/self/status"


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


class TestPinAtCreation:
    def test_answered_as_a_flag_never_echoed_and_kept_only_hashed_inside_the_ciphertext(
        self, sender, payload
    ):
        response = sender.post(
            "/api/v1/referrals",
            payload(self_service_pin=PIN),
            format="json",
            HTTP_IDEMPOTENCY_KEY="with-a-pin",
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["self_service"] is True
        assert PIN not in response.content.decode()
        stored = IdempotencyKey.objects.get(key="with-a-pin")
        assert PIN not in str(stored.response_body)
        text = database_text()
        assert PIN not in text
        assert "scrypt$" not in text, "the hash itself is inside the encrypted personal data"
        row = PersonalData.objects.get(referral_id=body["id"], field="self_service")
        assert PIN.encode() not in bytes(row.ciphertext)
        without = sender.post("/api/v1/referrals", payload(), format="json").json()
        assert without["self_service"] is False

    def test_neither_organisation_ever_sees_the_pin_or_its_hash(
        self, self_referral, sender, receiver
    ):
        rid = self_referral()["id"]
        for client in (sender, receiver):
            detail = client.get(f"/api/v1/referrals/{rid}")
            assert "self_service" not in detail.json()
            assert "scrypt" not in detail.content.decode()
            assert detail.json()["referral"]["self_service"] is True

    @pytest.mark.parametrize(
        ("pin", "status"),
        # Malformed (the schema's pattern): 400; well-formed but weak (a rule): 422.
        [("1111", 422), ("1234", 422), ("98765", 422), ("123", 400), ("123456789", 400),
         ("12a4", 400), (480391, 400)],
    )  # fmt: skip
    def test_weak_or_malformed_pins_are_refused(self, sender, payload, pin, status):
        response = sender.post("/api/v1/referrals", payload(self_service_pin=pin), format="json")
        assert response.status_code == status
        assert response.json()["errors"][0]["pointer"] == "/self_service_pin"
        assert not Referral.objects.exists()

    def test_the_hash_is_scrypt_and_checks_only_its_pin(self):
        stored = pins.pin_hash(PIN)
        algorithm, n, r, p = stored.split("$")[:4]
        assert (algorithm, int(n), int(r), int(p)) == ("scrypt", 2**14, 8, 1)
        assert pins.pin_matches(PIN, stored)
        assert not pins.pin_matches("480392", stored)
        assert not pins.pin_matches(PIN, None), "no stored hash: the decoy, never a match"
        assert pins.DECOY.split("$")[:4] == stored.split("$")[:4], "the decoy costs the same"


class TestExchange:
    def test_code_and_pin_give_a_ten_minute_token_for_that_referral(self, self_referral, anonymous):
        created = self_referral()
        spaced = created["claim_code"].lower()[:4] + " " + created["claim_code"].lower()[4:]
        response = sign_in(anonymous, spaced)
        assert response.status_code == 201, response.content
        body = response.json()
        assert set(body) == {"token", "token_type", "expires_in", "expires_at"}
        assert (body["token_type"], body["expires_in"]) == ("Bearer", 600)
        assert body["token"].startswith("srn_self_")
        row = SelfServiceToken.objects.get()
        assert row.checksum == pins.token_checksum(body["token"])
        assert str(row.referral_id) == created["id"]
        assert row.expires - row.created == SELF_TOKEN_LIFETIME
        assert body["token"] not in database_text()
        entry = AuditEntry.objects.filter(action="self-service sign-in").get()
        assert (entry.result, entry.object_id) == ("ok", created["id"])
        assert response["Cache-Control"] == "no-store"

    def test_the_token_expires_and_can_be_ended(self, self_referral, anonymous):
        code = self_referral()["claim_code"]
        first = bearer(sign_in(anonymous, code).json()["token"])
        assert first.get(STATUS).status_code == 200
        SelfServiceToken.objects.update(expires=timezone.now())
        expired = first.get(STATUS)
        assert expired.status_code == 401
        assert expired["WWW-Authenticate"] == 'Bearer realm="self-service"'
        second = bearer(sign_in(anonymous, code).json()["token"])
        assert second.delete("/api/v1/self/token").status_code == 204
        assert second.get(STATUS).status_code == 401
        assert retention_run("self_service_tokens") == 1, "the expired one; the ended one is gone"
        assert not SelfServiceToken.objects.exists()


class TestStatus:
    def test_a_sentence_and_the_next_step_in_the_persons_language(self, person, receiver):
        rid = person.referral["id"]
        # Consent was explained in pt-BR: Portuguese by default.
        default = person.get(STATUS).json()
        assert default["language"] == "pt"
        assert default["status"] == "O seu pedido foi enviado. Ainda não responderam."
        thai = person.get(STATUS, {"lang": "th"}).json()
        assert thai["status"] == "ส่งคำขอของคุณแล้ว เขายังไม่ได้ตอบ"
        assert thai["next_step"] == "เขาจะติดต่อคุณด้วยวิธีที่คุณเลือกเท่านั้น"
        spanish = person.get(STATUS, {"lang": "es"}).json()
        # Word for word the documented example.
        assert spanish == {**SELF_STATUS_EXAMPLE, "updated": spanish["updated"]}
        act(receiver, rid, "receive")
        act(receiver, rid, "accept")
        accepted = person.get(STATUS, {"lang": "en"}).json()
        assert (accepted["state"], accepted["status"]) == (
            "accepted",
            "They said yes. They can help you.",
        )

    def test_nothing_about_the_person_not_even_a_name(self, person):
        for lang in ("en", "es", "th", "pt"):
            text = person.get(STATUS, {"lang": lang}).content.decode()
            for word in ("Mia", "PrEP", "Clínica", "Red Umbrella", "sti", "signal", "sunflower"):
                assert word not in text, (lang, word)

    def test_unknown_query_parameters_and_languages_are_refused(self, person):
        assert person.get(STATUS, {"lang": "de"}).status_code == 400
        assert person.get(STATUS, {"referral": "x"}).status_code == 400

    def test_every_state_has_a_sentence_in_every_language(self):
        for code, _ in settings.LANGUAGES:
            with translation.override(code):
                rendered = {str(sentence) for sentence in STATUS_SENTENCES.values()}
            assert len(rendered) == len(STATUS_SENTENCES), code
            if code != "en":
                assert not rendered & {str(s) for s in STATUS_SENTENCES.values()}, code


class TestDisclosures:
    def test_organisation_names_and_times_only(self, person, sender, receiver):
        rid = person.referral["id"]
        receiver.get(f"/api/v1/referrals/{rid}")
        sender.get(f"/api/v1/referrals/{rid}")
        rows = person.get("/api/v1/self/disclosures").json()["results"]
        assert [row["organisation"] for row in rows] == [
            "Red Umbrella Collective",
            "Clínica Aberta",
        ]
        assert all(set(row) == {"organisation", "at"} for row in rows)

    def test_one_query_however_many(self, person, receiver, django_assert_num_queries):
        rid = person.referral["id"]
        for _ in range(5):
            receiver.get(f"/api/v1/referrals/{rid}")
        # The token look-up, then the list (its organisation names joined in).
        with django_assert_num_queries(2):
            assert len(person.get("/api/v1/self/disclosures").json()["results"]) == 5


class TestWithdraw:
    def test_a_revocation_by_the_person_both_organisations_hear_and_get_410(
        self, person, sender, receiver, anonymous
    ):
        rid = person.referral["id"]
        before = Event.objects.count()
        response = person.post("/api/v1/self/withdraw?lang=es")
        assert response.status_code == 200, response.content
        assert response.json()["state"] == "withdrawn"
        assert response.json()["status"] == "Retiraste tu permiso. Tus datos fueron borrados."
        assert response.json()["can_withdraw"] is False
        for client in (sender, receiver):
            gone = client.get(f"/api/v1/referrals/{rid}")
            assert gone.status_code == 410
            assert gone.json()["type"] == "/problems/consent-revoked"
        events = Event.objects.order_by("created", "id")[before:]
        assert {(e.type, e.organisation_id) for e in events} == {
            ("referral.consent_revoked", sender.organisation.pk),
            ("referral.consent_revoked", receiver.organisation.pk),
        }
        assert {e.data["side"] for e in events} == {"person"}
        entry = timeline(sender, rid)[-1]
        assert (entry["kind"], entry["side"], entry["method"], entry["actor"]) == (
            "consent_revoked",
            "person",
            "self_service",
            None,
        )
        assert not PersonalData.objects.filter(referral_id=rid).exists(), "the PIN hash too"
        # The session shows the final state; the code itself no longer opens anything.
        assert person.get(STATUS).json()["state"] == "withdrawn"
        assert person.post("/api/v1/self/withdraw").status_code == 200, "harmless again"
        assert sign_in(anonymous, person.referral["claim_code"]).status_code == 422

    def test_after_the_data_is_gone_the_status_says_so(self, person, sender):
        sender.post(f"/api/v1/referrals/{person.referral['id']}/consent/revoke")
        status = person.get(STATUS, {"lang": "en"}).json()
        assert (status["state"], status["contact_stopped"], status["can_withdraw"]) == (
            "withdrawn",
            None,
            False,
        )


class TestSafeContact:
    def test_stop_contact_reaches_both_organisations_first_thing(self, person, sender, receiver):
        rid = person.referral["id"]
        before = Event.objects.count()
        response = person.patch(
            "/api/v1/self/safe-contact?lang=en", {"do_not_contact": True}, format="json"
        )
        assert response.status_code == 200, response.content
        assert response.json()["contact_stopped"] is True
        assert response.json()["next_step"].startswith("They will not contact you.")
        detail = receiver.get(f"/api/v1/referrals/{rid}").json()
        assert next(iter(detail)) == "safe_contact"
        safe = detail["safe_contact"]
        assert (safe["do_not_contact"], safe["changed_by"], safe["version"]) == (True, "person", 2)
        assert "channels" not in safe and "contact" not in detail
        assert safe["code_word"] == "sunflower", "the rest of the instructions stay"
        events = Event.objects.order_by("created", "id")[before:]
        assert {(e.type, e.organisation_id) for e in events} == {
            ("referral.safe_contact_changed", sender.organisation.pk),
            ("referral.safe_contact_changed", receiver.organisation.pk),
        }

    def test_change_the_safe_channels(self, person, receiver):
        rid = person.referral["id"]
        person.patch("/api/v1/self/safe-contact", {"do_not_contact": True}, format="json")
        response = person.patch(
            "/api/v1/self/safe-contact", {"channels": ["whatsapp"]}, format="json"
        )
        assert response.status_code == 200
        detail = receiver.get(f"/api/v1/referrals/{rid}").json()
        assert detail["safe_contact"]["channels"] == ["whatsapp"]
        assert detail["safe_contact"]["do_not_contact"] is False
        assert detail["contact"]["handle"] == "mia.42"
        assert [(e["version"], e["side"]) for e in timeline(receiver, rid) if e["version"]] == [
            (2, "person"),
            (3, "person"),
        ]

    @pytest.mark.parametrize(
        ("body", "status"),
        # Against the schema (an unknown channel or field): 400; fields the schema allows that
        # contradict each other, or say nothing: 422.
        [({}, 422), ({"do_not_contact": True, "channels": ["sms"]}, 422),
         ({"channels": ["pigeon"]}, 400), ({"do_not_contact": False}, 422), ({"channels": []}, 400),
         ({"instructions": "call me"}, 400)],
    )  # fmt: skip
    def test_either_stop_or_name_channels(self, person, body, status):
        response = person.patch("/api/v1/self/safe-contact", body, format="json")
        assert response.status_code == status

    def test_not_once_closed_or_gone(self, person, sender):
        rid = person.referral["id"]
        act(sender, rid, "cancel")
        closed = person.patch("/api/v1/self/safe-contact", {"do_not_contact": True}, format="json")
        assert closed.status_code == 409
        assert person.get(STATUS).json()["can_change_contact"] is False
        sender.post(f"/api/v1/referrals/{rid}/consent/revoke")
        gone = person.patch("/api/v1/self/safe-contact", {"do_not_contact": True}, format="json")
        assert gone.status_code == 410


def test_lock_rows_are_forgotten_after_a_month_unless_locked(db):
    now = timezone.now()
    SelfServiceLock.objects.create(key="a" * 64, updated=now - timedelta(days=31))
    SelfServiceLock.objects.create(
        key="b" * 64, updated=now - timedelta(days=31), locked_until=now + timedelta(days=1)
    )
    SelfServiceLock.objects.create(key="c" * 64, updated=now)
    assert retention_run("self_service_locks") == 1
    assert sorted(SelfServiceLock.objects.values_list("key", flat=True)) == ["b" * 64, "c" * 64]


def test_the_address_is_counted_only_as_a_keyed_hash(self_referral, anonymous):
    code = self_referral()["claim_code"]
    sign_in(anonymous, code, "000001", REMOTE_ADDR="203.0.113.77")
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM api_ratelimitwindow")
        keys = " ".join(row[0] for row in cursor.fetchall())
    assert "self-address:" in keys
    assert "203.0.113.77" not in keys
    assert hashlib.sha256(b"203.0.113.77").hexdigest()[:32] not in keys
    assert code not in keys and pins.code_key(code)[:32] in keys
