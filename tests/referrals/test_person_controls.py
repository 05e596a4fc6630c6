"""What the person says, recorded by either organisation (issue 13): a revocation by the
receiver as well as the sender, with how the person told it; new safe-contact instructions
(If-Match, except "do not contact me", which applies at once); consent renewal within the
partnership's limits, before expiry only; and the job that warns the sender, once, seven days
before a consent lapses. Checked through the API and in the database."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from api.audit.models import Disclosure
from api.errors import InvalidInput, Unprocessable
from api.events import EVENT_TYPES
from api.models import Event
from api.timestamps import iso
from partners.models import Partnership, PartnershipStatus
from referrals.models import Consent, PersonalData, Referral, TimelineEntry
from referrals.services import (
    EXPIRING_NOTICE,
    consent_revoke,
    consents_warn_expiring,
    safe_contact_replace,
)
from referrals.tasks import warn_expiring_consents
from tests.referrals.conftest import act, current_etag, database_text

NEW_SAFE_CONTACT = {
    "do_not_contact": False,
    "channels": ["signal"],
    "instructions": "Old phone was taken. New Signal only, never voice.",
    "code_word": "lighthouse",
}


def events_since(before: int) -> list[Event]:
    return list(Event.objects.order_by("created", "id")[before:])


def url(referral_id, suffix="") -> str:
    return f"/api/v1/referrals/{referral_id}{suffix}"


class TestEitherSideRevokes:
    @pytest.mark.parametrize(
        ("side", "other", "method"),
        [("receiver", "sender", "phone"), ("sender", "receiver", "in_person")],
    )
    def test_the_side_that_heard_it_records_it_and_the_other_side_hears(
        self, create_referral, sender, receiver, side, other, method
    ):
        clients = {"sender": sender, "receiver": receiver}
        created = create_referral()
        rid = created["id"]
        before = Event.objects.count()

        response = clients[side].post(url(rid, "/consent/revoke"), {"method": method})

        assert response.status_code == 200, response.content
        assert response.json()["personal_data"] == "revoked"
        assert response.json()["claim_code"] is None
        assert not PersonalData.objects.filter(referral_id=rid).exists()
        for client in clients.values():
            gone = client.get(url(rid))
            assert gone.status_code == 410
            assert gone.json()["type"] == "/problems/consent-revoked"
        (event,) = events_since(before)
        assert event.type == "referral.consent_revoked"
        assert event.organisation_id == clients[other].organisation.pk
        assert event.data["side"] == side and event.data["method"] == method
        entry = clients[other].get(url(rid, "/timeline")).json()["results"][-1]
        assert {k: entry[k] for k in ("kind", "side", "method", "actor")} == {
            "kind": "consent_revoked",
            "side": side,
            "method": method,
            "actor": str(clients[side].organisation.pk),
        }
        assert entry["at"]

    def test_the_method_is_optional_so_a_withdrawal_never_bounces(self, create_referral, receiver):
        rid = create_referral()["id"]
        assert receiver.post(url(rid, "/consent/revoke")).status_code == 200
        entry = TimelineEntry.objects.get(referral_id=rid, kind="consent_revoked")
        assert (entry.side, entry.method) == ("receiver", "")

    def test_an_organisation_cannot_claim_the_person_used_self_service(
        self, create_referral, receiver
    ):
        rid = create_referral()["id"]
        response = receiver.post(url(rid, "/consent/revoke"), {"method": "self_service"})
        assert response.status_code == 400
        assert PersonalData.objects.filter(referral_id=rid).exists()

    def test_the_services_refuse_it_too_for_callers_without_a_serializer(
        self, create_referral, receiver
    ):
        """The FHIR facade calls the services directly: the rule is theirs, not the API's."""
        rid = create_referral()["id"]
        for call in (
            lambda: consent_revoke(
                organisation=receiver.organisation, referral_id=rid, method="self_service"
            ),
            lambda: safe_contact_replace(
                organisation=receiver.organisation,
                referral_id=rid,
                safe_contact={"do_not_contact": True},
                if_match=None,
                method="carrier pigeon",
            ),
        ):
            with pytest.raises((InvalidInput, Unprocessable)):
                call()
        assert PersonalData.objects.filter(referral_id=rid).count() == 7

    def test_the_receiver_revokes_even_while_the_partnership_is_suspended(
        self, create_referral, receiver, partnership
    ):
        rid = create_referral()["id"]
        Partnership.objects.filter(pk=partnership.pk).update(status=PartnershipStatus.SUSPENDED)
        assert receiver.get(url(rid)).json()["type"] == "/problems/partnership-suspended"
        assert receiver.post(url(rid, "/consent/revoke"), {"method": "message"}).status_code == 200
        assert not PersonalData.objects.filter(referral_id=rid).exists()


class TestSafeContact:
    def test_needs_if_match(self, create_referral, receiver):
        rid = create_referral()["id"]
        missing = receiver.patch(url(rid, "/safe-contact"), NEW_SAFE_CONTACT, format="json")
        assert missing.status_code == 428
        stale = receiver.patch(
            url(rid, "/safe-contact"), NEW_SAFE_CONTACT, format="json", HTTP_IF_MATCH='"9"'
        )
        assert stale.status_code == 412
        assert receiver.get(url(rid)).json()["safe_contact"]["code_word"] == "sunflower"

    def test_either_side_replaces_it_encrypted_and_versioned_as_metadata(
        self, create_referral, sender, receiver
    ):
        rid = create_referral()["id"]
        before = Event.objects.count()
        response = sender.patch(
            url(rid, "/safe-contact"),
            {**NEW_SAFE_CONTACT, "method": "phone"},
            format="json",
            HTTP_IF_MATCH=current_etag(sender, rid),
        )
        assert response.status_code == 200, response.content
        assert response["ETag"] == '"2"'

        # The receiver's next read: the new instructions, first, saying what changed.
        detail = receiver.get(url(rid)).json()
        assert next(iter(detail)) == "safe_contact"
        shown = detail["safe_contact"]
        assert {k: shown[k] for k in NEW_SAFE_CONTACT} == NEW_SAFE_CONTACT
        assert (shown["version"], shown["changed_by"]) == (2, "sender")
        assert "voicemail_ok" not in shown, "the old block is replaced, not merged"
        (event,) = events_since(before)
        assert (event.type, event.organisation_id) == (
            "referral.safe_contact_changed",
            receiver.organisation.pk,
        )
        assert event.data["safe_contact_version"] == 2
        assert "lighthouse" not in str(event.data)

        # A second change by the receiver: version 3, the sender is told.
        receiver.patch(
            url(rid, "/safe-contact"),
            {"do_not_contact": False, "channels": ["sms"], "method": "message"},
            format="json",
            HTTP_IF_MATCH=current_etag(receiver, rid),
        )
        entries = [
            e
            for e in sender.get(url(rid, "/timeline")).json()["results"]
            if e["kind"] == "safe_contact_changed"
        ]
        assert [(e["version"], e["side"], e["method"]) for e in entries] == [
            (2, "sender", "phone"),
            (3, "receiver", "message"),
        ]
        # Metadata only: the words live encrypted, nowhere in plaintext.
        text = database_text()
        for secret in ("lighthouse", "Old phone was taken"):
            assert secret not in text
        assert events_since(before)[-1].organisation_id == sender.organisation.pk

    @pytest.mark.parametrize("if_match", [None, '"stale"'])
    def test_do_not_contact_takes_effect_at_once(self, create_referral, sender, receiver, if_match):
        rid = create_referral()["id"]
        receiver.get(url(rid))
        headers = {"HTTP_IF_MATCH": if_match} if if_match else {}
        response = sender.patch(
            url(rid, "/safe-contact"),
            {"do_not_contact": True, "method": "in_person"},
            format="json",
            **headers,
        )
        assert response.status_code == 200, response.content
        for client in (receiver, sender):
            detail = client.get(url(rid)).json()
            assert detail["safe_contact"]["do_not_contact"] is True
            assert "contact" not in detail, "no number to call while contact is stopped"
        latest = Disclosure.objects.filter(referral_id=rid).order_by("-id").first()
        assert "contact" not in latest.categories

    def test_channels_and_do_not_contact_are_checked_as_at_creation(
        self, create_referral, receiver
    ):
        rid = create_referral()["id"]
        response = receiver.patch(
            url(rid, "/safe-contact"),
            {"do_not_contact": True, "channels": ["sms"]},
            format="json",
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/channels"

    def test_gone_and_suspended_like_any_use_of_the_data(
        self, create_referral, sender, receiver, partnership
    ):
        suspended = create_referral()["id"]
        revoked = create_referral()["id"]
        sender.post(url(revoked, "/consent/revoke"))
        Partnership.objects.filter(pk=partnership.pk).update(status=PartnershipStatus.SUSPENDED)
        body = {"do_not_contact": True}
        refused = receiver.patch(url(suspended, "/safe-contact"), body, format="json")
        assert (refused.status_code, refused.json()["type"]) == (
            409,
            "/problems/partnership-suspended",
        )
        gone = sender.patch(url(revoked, "/safe-contact"), body, format="json")
        assert gone.status_code == 410
        assert gone.json()["type"] == "/problems/consent-revoked"


def renewal(**overrides) -> dict:
    return {
        "method": "written",
        "language": "th",
        "wording_version": "2027-01",
        "recorded_by": "staff-23",
        **overrides,
    }


class TestConsentRenewal:
    def test_the_sender_renews_before_expiry(self, create_referral, sender, receiver):
        rid = create_referral()["id"]
        Consent.objects.filter(referral_id=rid).update(
            expires_at=timezone.now() + timedelta(days=3), expiring_notified_at=timezone.now()
        )
        new_expiry = timezone.now() + timedelta(days=120)
        before = Event.objects.count()

        response = sender.post(
            url(rid, "/consent/renew"), renewal(expires_at=new_expiry.isoformat()), format="json"
        )

        assert response.status_code == 200, response.content
        consent = Consent.objects.get(referral_id=rid)
        assert (consent.method, consent.language, consent.wording_version) == (
            "written",
            "th",
            "2027-01",
        )
        assert abs(consent.expires_at - new_expiry) < timedelta(seconds=1)
        assert consent.expiring_notified_at is None, "the next expiry will be warned of again"
        detail = receiver.get(url(rid)).json()
        assert detail["consent"]["recorded_by"] == "staff-23"
        assert detail["consent"]["language"] == "th"
        entry = sender.get(url(rid, "/timeline")).json()["results"][-1]
        assert (entry["kind"], entry["side"], entry["method"]) == (
            "consent_renewed",
            "sender",
            "written",
        )
        (event,) = events_since(before)
        assert (event.type, event.organisation_id) == (
            "referral.consent_renewed",
            receiver.organisation.pk,
        )
        assert "staff-23" not in database_text()

    def test_only_before_expiry(self, create_referral, sender):
        rid = create_referral()["id"]
        Consent.objects.filter(referral_id=rid).update(expires_at=timezone.now())
        response = sender.post(url(rid, "/consent/renew"), renewal(), format="json")
        assert response.status_code == 410
        assert response.json()["type"] == "/problems/consent-expired"
        revoked = create_referral()["id"]
        sender.post(url(revoked, "/consent/revoke"))
        assert (
            sender.post(url(revoked, "/consent/renew"), renewal(), format="json").status_code == 410
        )

    def test_within_the_partnerships_limits(self, create_referral, sender, partnership):
        rid = create_referral()["id"]
        too_long = renewal(expires_at=(timezone.now() + timedelta(days=400)).isoformat())
        response = sender.post(url(rid, "/consent/renew"), too_long, format="json")
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "/expires_at"

        Partnership.objects.filter(pk=partnership.pk).update(data_categories=["contact"])
        narrowed = sender.post(url(rid, "/consent/renew"), renewal(), format="json")
        assert narrowed.status_code == 422
        assert narrowed.json()["type"] == "/problems/category-not-allowed"

        Partnership.objects.filter(pk=partnership.pk).update(status=PartnershipStatus.ENDED)
        ended = sender.post(url(rid, "/consent/renew"), renewal(), format="json")
        assert ended.status_code == 422
        assert ended.json()["partnership_status"] == "ended"
        assert Consent.objects.get(referral_id=rid).wording_version == "2026-10"

    def test_sender_only_and_open_referrals_only(self, create_referral, sender, receiver):
        rid = create_referral()["id"]
        refused = receiver.post(url(rid, "/consent/renew"), renewal(), format="json")
        assert refused.status_code == 409
        assert refused.json()["type"] == "/problems/wrong-party"
        assert refused.json()["allowed_actions"] == ["receive"]
        act(sender, rid, "cancel")
        closed = sender.post(url(rid, "/consent/renew"), renewal(), format="json")
        assert closed.status_code == 409
        assert closed.json()["type"] == "/problems/referral-closed"


class TestConsentExpiringWarning:
    def test_fires_once_seven_days_before_to_the_sender(self, create_referral, sender):
        now = timezone.now()
        soon = create_referral()["id"]
        later = create_referral()["id"]
        revoked = create_referral()["id"]
        Consent.objects.filter(referral_id__in=[soon, revoked]).update(
            expires_at=now + EXPIRING_NOTICE - timedelta(minutes=1)
        )
        Consent.objects.filter(referral_id=later).update(
            expires_at=now + EXPIRING_NOTICE + timedelta(hours=1)
        )
        sender.post(url(revoked, "/consent/revoke"))
        before = Event.objects.count()

        assert consents_warn_expiring(now=now) == 1
        assert consents_warn_expiring(now=now + timedelta(minutes=15)) == 0, "once"

        (event,) = events_since(before)
        assert event.type == "referral.consent_expiring"
        assert event.organisation_id == sender.organisation.pk
        assert event.data["referral_id"] == soon
        # UTC with Z, as every timestamp the API writes.
        assert event.data["expires_at"] == iso(Consent.objects.get(referral_id=soon).expires_at)
        assert event.data["expires_at"].endswith("Z")
        # Two hours on, the later one is within seven days too: its own single warning.
        assert consents_warn_expiring(now=now + timedelta(hours=2)) == 1
        assert Event.objects.filter(type="referral.consent_expiring").count() == 2

    def test_a_renewal_warns_again_before_the_new_expiry(self, create_referral, sender):
        rid = create_referral()["id"]
        now = timezone.now()
        Consent.objects.filter(referral_id=rid).update(expires_at=now + timedelta(days=2))
        assert consents_warn_expiring(now=now) == 1
        new_expiry = now + timedelta(days=30)
        sender.post(
            url(rid, "/consent/renew"), renewal(expires_at=new_expiry.isoformat()), format="json"
        )
        assert consents_warn_expiring(now=now) == 0
        assert consents_warn_expiring(now=new_expiry - timedelta(days=6)) == 1

    def test_closed_referrals_are_not_warned_of(self, create_referral, sender):
        rid = create_referral()["id"]
        act(sender, rid, "cancel")
        Consent.objects.filter(referral_id=rid).update(
            expires_at=timezone.now() + timedelta(days=1)
        )
        assert warn_expiring_consents() == 0

    def test_beat_runs_it_and_the_event_can_be_subscribed_to(self):
        schedule = settings.CELERY_BEAT_SCHEDULE["referrals-warn-expiring-consents"]
        assert schedule["task"] == "referrals.warn_expiring_consents"
        assert schedule["schedule"] <= 3600
        for event_type in (
            "referral.consent_expiring",
            "referral.consent_renewed",
            "referral.safe_contact_changed",
        ):
            assert event_type in EVENT_TYPES


def test_timeline_keeps_no_words_about_the_person(create_referral, sender, receiver):
    rid = create_referral()["id"]
    sender.patch(
        url(rid, "/safe-contact"),
        {**NEW_SAFE_CONTACT, "method": "phone"},
        format="json",
        HTTP_IF_MATCH=current_etag(sender, rid),
    )
    receiver.post(url(rid, "/consent/revoke"), {"method": "message"})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT row_to_json(t)::text FROM referrals_timelineentry t WHERE referral_id = %s",
            [rid],
        )
        rows = " ".join(row[0] for row in cursor.fetchall())
    assert "signal" not in rows.lower() and "lighthouse" not in rows
    assert Referral.objects.get(pk=rid).claim_code is None
