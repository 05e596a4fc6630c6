"""What the receiver sees (consent scoping), notes, and destruction on revocation and expiry,
checked in the database with raw SQL rather than through the API."""

from datetime import timedelta
from urllib.parse import quote

from django.db import connection
from django.utils import timezone

from api.models import Event
from referrals.models import Consent
from referrals.services import consents_destroy_expired
from referrals.tasks import destroy_expired_consents
from tests.referrals.conftest import act, timeline


def rows(table: str, referral_id) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE referral_id = %s", [referral_id])
        return cursor.fetchone()[0]


PERSONAL_TABLES = ("referrals_personaldata", "referrals_referralkey", "referrals_referralnote")


class TestConsentScoping:
    def test_receiver_sees_all_consented_categories_safe_contact_first(
        self, create_referral, receiver
    ):
        rid = create_referral()["id"]
        response = receiver.get(f"/api/v1/referrals/{rid}")
        assert response.status_code == 200
        body = response.json()
        assert next(iter(body)) == "safe_contact"
        assert body["safe_contact"]["code_word"] == "sunflower"
        assert body["contact"] == {"phone": "+351 900 000 000", "handle": "mia.42"}
        assert body["health"] == "Missed last PrEP refill."
        assert body["legal"] == "Landlord threatening eviction."
        assert body["allowed_actions"] == ["receive"]
        assert response["Cache-Control"] == "no-store"
        assert response["ETag"] == '"1"'

    def test_fields_outside_consent_are_absent_not_null(self, sender, receiver, payload):
        body = payload(consent={"data_categories": ["notes"]})
        for name in ("contact", "health", "legal"):
            body.pop(name)
        rid = sender.post("/api/v1/referrals", body, format="json").json()["id"]
        for client in (receiver, sender):
            detail = client.get(f"/api/v1/referrals/{rid}").json()
            for name in ("contact", "health", "legal", "decline_note"):
                assert name not in detail
            assert detail["consent"]["data_categories"] == ["notes"]
            assert detail["person"]["name"] == "Mia"

    def test_partial_groups_leave_out_what_was_not_given(self, sender, receiver, payload):
        body = payload(consent={"data_categories": ["contact"]})
        body.pop("health")
        body.pop("legal")
        body["contact"] = {"handle": "mia.42"}
        body["person"] = {"name": "Mia"}
        rid = sender.post("/api/v1/referrals", body, format="json").json()["id"]
        detail = receiver.get(f"/api/v1/referrals/{rid}").json()
        assert detail["contact"] == {"handle": "mia.42"}
        assert detail["person"] == {"name": "Mia"}

    def test_opening_does_not_mark_received(self, create_referral, receiver):
        rid = create_referral()["id"]
        receiver.get(f"/api/v1/referrals/{rid}")
        assert receiver.get(f"/api/v1/referrals/{rid}").json()["referral"]["status"] == "requested"


class TestClaimCode:
    def test_receiver_finds_by_code(self, create_referral, receiver):
        created = create_referral()
        code = created["claim_code"]
        response = receiver.get(f"/api/v1/referrals/claim/{code.lower()}")
        assert response.status_code == 200
        assert response.json()["referral"]["id"] == created["id"]

    def test_the_receiver_reads_a_code_as_the_person_does(self, create_referral, receiver):
        """As typed from the slip: dashes and spaces between groups, any case. The self-service
        sign-in reads the same code the same way."""
        created = create_referral()
        code = created["claim_code"]
        typed = quote(f" {code[:4].lower()}-{code[4:]} ")
        response = receiver.get(f"/api/v1/referrals/claim/{typed}")
        assert response.status_code == 200
        assert response.json()["referral"]["id"] == created["id"]

    def test_sender_and_strangers_get_404(self, create_referral, sender, stranger):
        code = create_referral()["claim_code"]
        unknown = stranger.get("/api/v1/referrals/claim/ZZZZZZZZ")
        for client in (sender, stranger):
            response = client.get(f"/api/v1/referrals/claim/{code}")
            assert response.status_code == 404
            body = response.json()
            body["instance"] = body["instance"].replace(code, "ZZZZZZZZ")
            assert body == unknown.json()


class TestNotes:
    def test_thread_between_both_sides(self, create_referral, sender, receiver):
        rid = create_referral()["id"]
        first = sender.post(f"/api/v1/referrals/{rid}/notes", {"text": "She prefers mornings."})
        assert first.status_code == 201
        before = Event.objects.count()
        second = receiver.post(f"/api/v1/referrals/{rid}/notes", {"text": "Thursday 10:00."})
        assert second.status_code == 201
        event = Event.objects.order_by("created")[before:].get()
        assert event.type == "referral.note_added"
        assert event.organisation_id == sender.organisation.pk
        assert "Thursday" not in str(event.data)
        for client in (sender, receiver):
            notes = client.get(f"/api/v1/referrals/{rid}/notes").json()["results"]
            assert [n["text"] for n in notes] == ["She prefers mornings.", "Thursday 10:00."]
            assert notes[1]["author"] == str(receiver.organisation.pk)
        with connection.cursor() as cursor:
            cursor.execute("SELECT ciphertext FROM referrals_referralnote")
            assert all(b"Thursday" not in bytes(r[0]) for r in cursor.fetchall())
        kinds = [e["kind"] for e in timeline(sender, rid)]
        assert kinds == ["created", "note_added", "note_added"]

    def test_notes_need_the_notes_category(self, create_referral, sender, receiver):
        rid = create_referral(consent={"data_categories": ["contact", "health", "legal"]})["id"]
        response = sender.post(f"/api/v1/referrals/{rid}/notes", {"text": "hi"})
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/not-consented"
        read = receiver.get(f"/api/v1/referrals/{rid}/notes")
        assert (read.status_code, read.json()["type"]) == (409, "/problems/not-consented")
        assert rows("referrals_referralnote", rid) == 0

    def test_note_shape(self, create_referral, sender):
        rid = create_referral()["id"]
        response = sender.post(f"/api/v1/referrals/{rid}/notes", {"text": "x", "author": "me"})
        assert response.status_code == 400
        assert response.json()["errors"][0]["pointer"] == "/author"


class TestRevocation:
    def test_destroys_personal_data_for_everyone(self, create_referral, sender, receiver):
        rid = create_referral()["id"]
        sender.post(f"/api/v1/referrals/{rid}/notes", {"text": "note"})
        act(receiver, rid, "receive")
        assert all(rows(t, rid) > 0 for t in PERSONAL_TABLES)
        before = Event.objects.count()

        response = sender.post(f"/api/v1/referrals/{rid}/consent/revoke")

        assert response.status_code == 200
        assert response.json()["personal_data"] == "revoked"
        assert all(rows(t, rid) == 0 for t in PERSONAL_TABLES)
        with connection.cursor() as cursor:
            cursor.execute("SELECT status FROM referrals_referral WHERE id = %s", [rid])
            assert cursor.fetchone()[0] == "received"
        assert Consent.objects.get(referral_id=rid).revoked_at is not None
        for client in (sender, receiver):
            for path in ("", "/notes"):
                gone = client.get(f"/api/v1/referrals/{rid}{path}")
                assert gone.status_code == 410
                assert gone.json()["type"] == "/problems/consent-revoked"
                assert "revoked" in gone.json()["detail"]
        code = Event.objects.order_by("created")[before:].get()
        assert (code.type, code.organisation_id) == (
            "referral.consent_revoked",
            receiver.organisation.pk,
        )
        kinds = [e["kind"] for e in timeline(receiver, rid)]
        assert kinds == ["created", "note_added", "status_changed", "consent_revoked"]
        assert sender.post(f"/api/v1/referrals/{rid}/notes", {"text": "x"}).status_code == 410

    def test_lifecycle_goes_on_with_metadata(self, create_referral, sender, receiver):
        rid = create_referral()["id"]
        sender.post(f"/api/v1/referrals/{rid}/consent/revoke")
        gone = receiver.get(f"/api/v1/referrals/{rid}").json()
        assert gone["referral_status"] == "requested"
        assert act(receiver, rid, "receive", etag=gone["etag"]).status_code == 200
        assert act(receiver, rid, "decline", body={"reason": "other"}).status_code == 200

    def test_the_receiver_records_it_too_and_the_sender_hears(self, create_referral, receiver):
        """Issue 13: the person may tell either organisation (see test_person_controls)."""
        rid = create_referral()["id"]
        response = receiver.post(f"/api/v1/referrals/{rid}/consent/revoke", {"method": "phone"})
        assert response.status_code == 200
        assert all(rows(t, rid) == 0 for t in PERSONAL_TABLES)
        event = Event.objects.get(type="referral.consent_revoked")
        assert event.organisation_id != receiver.organisation.pk

    def test_repeating_is_harmless(self, create_referral, sender):
        rid = create_referral()["id"]
        sender.post(f"/api/v1/referrals/{rid}/consent/revoke")
        again = sender.post(f"/api/v1/referrals/{rid}/consent/revoke")
        assert again.status_code == 200
        assert Event.objects.filter(type="referral.consent_revoked").count() == 1

    def test_lists_still_show_the_referral(self, create_referral, receiver, sender):
        rid = create_referral()["id"]
        sender.post(f"/api/v1/referrals/{rid}/consent/revoke")
        inbox = receiver.get("/api/v1/referrals?box=inbox").json()["results"]
        assert [(r["id"], r["personal_data"]) for r in inbox] == [(rid, "revoked")]


class TestConsentExpiry:
    def test_expired_consent_is_destroyed(self, create_referral, receiver):
        expired = create_referral()["id"]
        valid = create_referral()["id"]
        Consent.objects.filter(referral_id=expired).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )

        assert destroy_expired_consents() == 1

        assert all(rows(t, expired) == 0 for t in PERSONAL_TABLES)
        assert rows("referrals_personaldata", valid) > 0
        assert rows("referrals_referralkey", valid) == 1
        response = receiver.get(f"/api/v1/referrals/{expired}")
        assert response.status_code == 410
        assert response.json()["type"] == "/problems/consent-expired"
        assert receiver.get(f"/api/v1/referrals/{valid}").status_code == 200
        kinds = [e["kind"] for e in timeline(receiver, expired)]
        assert kinds == ["created", "consent_expired"]
        assert consents_destroy_expired() == 0

    def test_batches(self, create_referral):
        ids = [create_referral()["id"] for _ in range(5)]
        Consent.objects.filter(referral_id__in=ids).update(expires_at=timezone.now())
        assert consents_destroy_expired(batch=2) == 5
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM referrals_personaldata")
            assert cursor.fetchone()[0] == 0


class TestDisclosureLog:
    def test_every_personal_read_is_recorded(self, payload, sender, receiver):
        from api.audit.models import Disclosure

        body = payload(consent={"data_categories": ["notes", "contact"]})
        del body["health"], body["legal"]
        created = sender.post("/api/v1/referrals", body, format="json").json()
        rid = created["id"]
        receiver.get(f"/api/v1/referrals/{rid}")
        receiver.get(f"/api/v1/referrals/claim/{created['claim_code']}")
        sender.post(f"/api/v1/referrals/{rid}/notes", {"text": "hello"})
        receiver.get(f"/api/v1/referrals/{rid}/notes")
        receiver.get(f"/api/v1/referrals/{rid}/timeline")
        receiver.get("/api/v1/referrals")
        rows = list(
            Disclosure.objects.filter(referral_id=rid)
            .order_by("id")
            .values_list("organisation_id", "operation", "categories")
        )
        everything = ["consent", "contact", "person", "reason", "safe_contact"]
        assert rows == [
            (receiver.organisation.pk, "referrals:detail", everything),
            (receiver.organisation.pk, "referrals:claim", everything),
            (receiver.organisation.pk, "referrals:notes", ["notes"]),
        ]
