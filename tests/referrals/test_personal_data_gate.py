"""The gate in front of personal data, attacked from the receiver's side: reading and writing a
referral's personal data after its consent expired or its retention period ended, before any
scheduled job has destroyed it (beat or the worker down), and while the partnership it came
through is suspended. Every path that uses the data key is tried."""

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.db import connection
from django.utils import timezone

from partners.models import PartnershipStatus
from referrals import selectors
from referrals.models import Consent, PersonalData, Referral, ReferralNote, Status
from tests.referrals.conftest import act


def stored_rows(referral_id) -> int:
    """Ciphertexts and key still in the database: the job has not run."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM referrals_personaldata WHERE referral_id = %(id)s)"
            " + (SELECT count(*) FROM referrals_referralkey WHERE referral_id = %(id)s)",
            {"id": referral_id},
        )
        return cursor.fetchone()[0]


def personal_paths(client, referral_id, code):
    """Every request that decrypts or encrypts under the referral's data key."""
    yield "detail", client.get(f"/api/v1/referrals/{referral_id}")
    yield "notes", client.get(f"/api/v1/referrals/{referral_id}/notes")
    yield "add note", client.post(f"/api/v1/referrals/{referral_id}/notes", {"text": "still here?"})
    if code and client.organisation.pk == Referral.objects.get(pk=referral_id).receiver_id:
        yield "claim", client.get(f"/api/v1/referrals/claim/{code}")


def assert_all(client, referral_id, code, status, problem):
    for name, response in personal_paths(client, referral_id, code):
        assert response.status_code == status, (name, response.content)
        assert response["Content-Type"] == "application/problem+json", name
        assert response.json()["type"] == f"/problems/{problem}", (name, response.json())
        assert "Mia" not in response.content.decode(), name


@pytest.fixture
def open_referral(create_referral, sender, receiver):
    created = create_referral()
    sender.post(f"/api/v1/referrals/{created['id']}/notes", {"text": "She prefers mornings."})
    act(receiver, created["id"], "receive")
    return created


class TestConsentExpiry:
    def test_every_path_answers_410_the_moment_consent_expires(
        self, open_referral, sender, receiver
    ):
        rid, code = open_referral["id"], open_referral["claim_code"]
        assert receiver.get(f"/api/v1/referrals/{rid}").status_code == 200
        Consent.objects.filter(referral_id=rid).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        before = stored_rows(rid)
        notes = ReferralNote.objects.filter(referral_id=rid).count()

        for client in (receiver, sender):
            assert_all(client, rid, code, 410, "consent-expired")

        assert stored_rows(rid) == before > 0, "the job has not run: the refusal is the gate's"
        assert ReferralNote.objects.filter(referral_id=rid).count() == notes
        gone = receiver.get(f"/api/v1/referrals/{rid}").json()
        assert (gone["referral_status"], gone["etag"]) == ("received", '"2"')

    def test_a_decline_note_cannot_be_written_after_expiry(self, open_referral, receiver):
        rid = open_referral["id"]
        Consent.objects.filter(referral_id=rid).update(expires_at=timezone.now())
        response = act(receiver, rid, "decline", body={"reason": "other", "note": "Try Porto."})
        assert response.status_code == 410
        assert response.json()["type"] == "/problems/consent-expired"
        assert not PersonalData.objects.filter(referral_id=rid, field="decline_note").exists()
        assert Referral.objects.get(pk=rid).status == Status.RECEIVED
        # The lifecycle goes on without personal data.
        assert act(receiver, rid, "decline", body={"reason": "other"}).status_code == 200

    def test_still_open_a_second_before(self, open_referral, receiver):
        rid = open_referral["id"]
        Consent.objects.filter(referral_id=rid).update(
            expires_at=timezone.now() + timedelta(seconds=30)
        )
        for name, response in personal_paths(receiver, rid, open_referral["claim_code"]):
            assert response.status_code in (200, 201), (name, response.content)


def close(referral_id, receiver, days_ago):
    """Complete a received referral through the API, then move its closing back in time."""
    for action in ("accept", "start"):
        act(receiver, referral_id, action)
    act(receiver, referral_id, "complete", body={"outcome": "service_provided"})
    closed = timezone.now() - timedelta(days=days_ago)
    Referral.objects.filter(pk=referral_id).update(closed=closed)


class TestRetentionCutOff:
    def test_every_path_answers_410_once_retention_ends(self, open_referral, sender, receiver):
        rid = open_referral["id"]
        close(rid, receiver, days_ago=30.01)
        before = stored_rows(rid)

        for client in (receiver, sender):
            assert_all(client, rid, None, 410, "retention-ended")

        assert stored_rows(rid) == before > 0, "the job has not run: the refusal is the gate's"

    def test_readable_until_the_cut_off(self, open_referral, sender, receiver):
        rid = open_referral["id"]
        close(rid, receiver, days_ago=29.9)
        for client in (receiver, sender):
            assert client.get(f"/api/v1/referrals/{rid}").status_code == 200
            assert client.get(f"/api/v1/referrals/{rid}/notes").status_code == 200

    def test_the_period_is_the_setting(self, open_referral, receiver, settings):
        settings.RETENTION_PERSONAL_DATA_DAYS = 7
        rid = open_referral["id"]
        close(rid, receiver, days_ago=8)
        response = receiver.get(f"/api/v1/referrals/{rid}")
        assert response.status_code == 410
        assert "7 days" in response.json()["detail"]

    def test_after_the_job_the_answer_stays_the_same(self, open_referral, receiver):
        from api.retention import retention_run

        rid = open_referral["id"]
        close(rid, receiver, days_ago=31)
        assert retention_run("referral_personal_data") == 1
        assert stored_rows(rid) == 0
        response = receiver.get(f"/api/v1/referrals/{rid}")
        assert response.json()["type"] == "/problems/retention-ended"


@pytest.mark.parametrize("offset", [-2, -1, 0, 1, 2])
def test_the_request_rule_and_the_jobs_select_the_same_referrals(
    offset, open_referral, create_referral, receiver
):
    """The gate (Python) and the jobs (SQL) read one rule: at every boundary they agree."""
    now = timezone.now()
    step = timedelta(seconds=offset)
    retention = selectors.personal_data_retention()
    expiring = create_referral()["id"]
    Consent.objects.filter(referral_id=expiring).update(expires_at=now + step)
    closing = open_referral["id"]
    close(closing, receiver, days_ago=0)
    Referral.objects.filter(pk=closing).update(closed=now - retention + step)

    for rid, queryset, rule in (
        (expiring, selectors.referrals_with_expired_consent, selectors.consent_expired),
        (closing, selectors.referrals_past_retention, selectors.retention_ended),
    ):
        referral = Referral.objects.select_related("consent").get(pk=rid)
        selected = queryset(now).filter(pk=rid).exists()
        assert selected == rule(referral, now) == (offset <= 0), (rid, offset)


class TestPartnershipSuspension:
    def suspend(self, client, partnership, action="suspend"):
        response = client.post(f"/api/v1/partnerships/{partnership.pk}/{action}")
        assert response.status_code == 200, response.content

    @pytest.mark.parametrize("suspender", ["sender", "receiver"])
    def test_the_receiver_cannot_use_personal_data_while_suspended(
        self, suspender, open_referral, partnership, sender, receiver
    ):
        rid, code = open_referral["id"], open_referral["claim_code"]
        by = sender if suspender == "sender" else receiver
        self.suspend(by, partnership)

        for name, response in personal_paths(receiver, rid, code):
            assert response.status_code == 409, (name, response.content)
            problem = response.json()
            assert problem["type"] == "/problems/partnership-suspended", name
            assert problem["partnership"] == str(partnership.pk), name
            assert "suspended" in problem["detail"], name
            assert "Mia" not in response.content.decode(), name
        declined = act(receiver, rid, "decline", body={"reason": "other", "note": "n"})
        assert declined.status_code == 409
        assert declined.json()["type"] == "/problems/partnership-suspended"
        assert not PersonalData.objects.filter(referral_id=rid, field="decline_note").exists()
        # Metadata stays readable, and the sender still has its own referral.
        assert receiver.get(f"/api/v1/referrals/{rid}/timeline").status_code == 200
        assert receiver.get("/api/v1/referrals").json()["results"][0]["id"] == rid
        assert sender.get(f"/api/v1/referrals/{rid}").status_code == 200

        self.suspend(by, partnership, "resume")
        for name, response in personal_paths(receiver, rid, code):
            assert response.status_code in (200, 201), (name, response.content)

    def test_only_suspension_of_that_partnership_counts(self, open_referral, partnership, receiver):
        rid = open_referral["id"]
        partnership.status = PartnershipStatus.SUSPENDED
        partnership.save()
        refused = receiver.get(f"/api/v1/referrals/{rid}")
        assert (refused.status_code, refused.json()["type"]) == (
            409,
            "/problems/partnership-suspended",
        )
        partnership.status = PartnershipStatus.ACTIVE
        partnership.save()
        assert receiver.get(f"/api/v1/referrals/{rid}").status_code == 200


class TestRespondBy:
    def post(self, sender, payload, respond_by):
        body = payload(respond_by=respond_by.isoformat())
        return sender.post("/api/v1/referrals", body, format="json")

    def test_more_than_90_days_ahead_is_refused(self, sender, payload):
        response = self.post(sender, payload, timezone.now() + timedelta(days=90, minutes=1))
        assert response.status_code == 422
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["errors"] == [
            {"pointer": "/respond_by", "detail": "respond_by must be at most 90 days ahead."}
        ]
        assert not Referral.objects.exists()
        far = self.post(sender, payload, timezone.now().replace(year=9999))
        assert far.status_code == 422
        assert far.json()["errors"][0]["pointer"] == "/respond_by"

    def test_up_to_90_days_is_fine(self, sender, payload):
        response = self.post(sender, payload, timezone.now() + timedelta(days=89, hours=23))
        assert response.status_code == 201, response.content

    def test_the_schema_states_it(self):
        """JSON Schema cannot bound a date relative to now; the description says it."""
        document = yaml.safe_load(
            (Path(settings.BASE_DIR) / "openapi" / "openapi.yaml").read_text()
        )
        respond_by = document["components"]["schemas"]["ReferralCreateRequest"]["properties"][
            "respond_by"
        ]
        assert "at most 90 days ahead" in respond_by["description"]
