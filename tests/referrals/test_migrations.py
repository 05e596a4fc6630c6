"""The migrations that took consent words and claim codes out of plaintext convert rows written
before them: referrals app 0003/0004 and api 0006, run on rows made with the old schema."""

import hashlib
import importlib
import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from api.models import IdempotencyKey
from referrals import crypto
from referrals.models import Consent, PersonalData, Referral
from referrals.selectors import data_key
from tests.conftest import issue_token
from tests.referrals.conftest import database_text, ensure_taxonomy, referral_payload
from tests.referrals.test_crypto import legacy_wrap

BEFORE = [("referrals", "0001_initial"), ("api", "0005_disclosure")]
conversion = importlib.import_module("referrals.migrations.0003_consent_personal_fields_encrypted")


@pytest.mark.parametrize(
    ("words", "code"),
    [
        ("Sexual health appointment", "sexual-health"),
        ("PrEP start and an STI test", "sexual-health"),
        ("Wants contraception", "contraception"),
        ("Pregnancy options", "abortion-reproductive-care"),
        ("Needs an immigration lawyer", "legal-advice"),
        ("Emergency shelter tonight", "emergency-shelter"),
        ("Reporting an assault safely", "safe-reporting-violence"),
        ("Clinic visit", "general-health"),
        ("Questions", "other"),
        ("", "other"),
    ],
)
def test_purpose_words_become_codes(words, code):
    assert conversion.purpose_code(words) == code


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_are_converted(
    sender_org, receiver_org, partnership, service, make_application, api_client_for
):
    ensure_taxonomy()
    application = make_application(sender_org)
    body = referral_payload(receiver_org, service)
    old = migrate(BEFORE)
    OldReferral = old.get_model("referrals", "Referral")
    OldConsent = old.get_model("referrals", "Consent")
    OldKey = old.get_model("referrals", "ReferralKey")
    OldKeyRow = old.get_model("api", "IdempotencyKey")
    now = timezone.now()

    def referral(status, personal_data, purpose, wording, recorded_by, kid="dev1"):
        row = OldReferral.objects.create(
            sender_id=sender_org.pk,
            receiver_id=receiver_org.pk,
            service_id=service.pk,
            partnership_id=partnership.pk,
            urgency="soon",
            respond_by=now + timedelta(days=3),
            status=status,
            claim_code=uuid.uuid4().hex[:8].upper(),
            personal_data=personal_data,
            created=now,
            updated=now,
            closed=now if status == "completed" else None,
        )
        OldConsent.objects.create(
            referral=row,
            method="verbal",
            language="pt",
            given_at=now,
            recorded_by=recorded_by,
            purpose=purpose,
            data_categories=["contact"],
            wording_version=wording,
            expires_at=now + timedelta(days=90),
        )
        if personal_data == "present":
            if kid == "dev1":
                wrapped = legacy_wrap(row.pk, crypto.new_data_key())
            else:
                wrapped = b"\x01" + bytes(60)
            OldKey.objects.create(referral=row, kid=kid, wrapped=wrapped)
        return row

    open_ = referral("requested", "present", "Sexual health appointment", "2026-10", "staff-17")
    closed = referral("completed", "present", "Needs an immigration lawyer", "Read aloud", "st-2")
    revoked = referral("received", "revoked", "Housing support for Ana", "v1", "staff-gone-9")
    unreadable = referral("received", "present", "Mental health", "v2", "staff-4", kid="lost")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    OldKeyRow.objects.create(
        application_id=application.pk,
        key="before-the-upgrade",
        request_fingerprint=hashlib.sha256(
            f"POST /api/v1/referrals\n{canonical}".encode()
        ).hexdigest(),
        response_status=201,
        response_body={"id": str(open_.pk), "claim_code": open_.claim_code},
        response_headers={},
    )

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    def group(row):
        ciphertext = PersonalData.objects.get(referral_id=row.pk, field="consent").ciphertext
        referral = Referral.objects.select_related("key").get(pk=row.pk)
        return crypto.decrypt_field(data_key(referral), row.pk, "consent", ciphertext)

    def consent(row):
        return Consent.objects.values("purpose", "wording_version").get(referral_id=row.pk)

    assert group(open_) == {
        "recorded_by": "staff-17",
        "purpose_note": "Sexual health appointment",
    }
    assert consent(open_) == {"purpose": "sexual-health", "wording_version": "2026-10"}
    assert Referral.objects.get(pk=open_.pk).claim_code == open_.claim_code

    assert group(closed) == {"recorded_by": "st-2", "purpose_note": "Needs an immigration lawyer"}
    assert consent(closed) == {"purpose": "legal-advice", "wording_version": "0"}
    assert Referral.objects.get(pk=closed.pk).claim_code is None

    assert consent(revoked) == {"purpose": "housing", "wording_version": "v1"}
    assert Referral.objects.get(pk=revoked.pk).claim_code is None
    assert not PersonalData.objects.filter(referral_id=revoked.pk).exists()

    assert consent(unreadable) == {"purpose": "mental-health", "wording_version": "v2"}
    assert not PersonalData.objects.filter(referral_id=unreadable.pk, field="consent").exists()

    stored = database_text()
    for words in ("staff-gone-9", "Housing support for Ana", "staff-4", "Read aloud"):
        assert words not in stored
    row = IdempotencyKey.objects.get(key="before-the-upgrade")
    assert row.object_id == open_.pk

    # A retry of the request from before the upgrade still replays, now through the keyed
    # fingerprint.
    client = api_client_for(sender_org)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(application)}")
    replay = client.post(
        "/api/v1/referrals", body, format="json", HTTP_IDEMPOTENCY_KEY="before-the-upgrade"
    )
    assert replay.status_code == 201, replay.content
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == str(open_.pk)
    assert Referral.objects.count() == 4
