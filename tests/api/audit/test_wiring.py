"""The audit trail as the other apps feed it: consent changes and purges from the referral
services, refusals on the directory and referral look-ups."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api.audit.models import AuditEntry
from api.audit.selectors import audit_verify
from partners.models import Partnership, PartnershipStatus, Service
from referrals.models import Consent
from referrals.services import consents_destroy_expired
from tests.api.audit.factories import make_referral

pytestmark = pytest.mark.django_db


def actions():
    return [(e.action, e.object_id, e.result) for e in AuditEntry.objects.order_by("sequence")]


def test_consent_revocation_is_audited(api_client_for, make_organisation):
    sender, receiver = make_organisation(), make_organisation()
    referral = make_referral(sender, receiver, canary="x")
    client = api_client_for(sender)
    response = client.post(f"/api/v1/referrals/{referral.pk}/consent/revoke", {}, format="json")
    assert response.status_code == 200
    assert actions() == [
        ("destroy personal data (revoked)", str(referral.pk), "ok"),
        ("POST referrals:consent-revoke", str(referral.pk), "200"),
    ]
    assert AuditEntry.objects.filter(actor_organisation=sender.pk).count() == 2
    assert audit_verify() is None


def test_consent_expiry_is_audited(make_organisation):
    referral = make_referral(make_organisation(), make_organisation(), canary="x")
    Consent.objects.filter(referral=referral).update(expires_at=timezone.now() - timedelta(1))
    assert consents_destroy_expired() == 1
    (entry,) = AuditEntry.objects.all()
    assert (entry.action, entry.object_id, entry.actor_organisation) == (
        "destroy personal data (expired)",
        str(referral.pk),
        None,
    )


def test_writing_to_another_organisations_service_is_audited(api_client_for, make_organisation):
    """Services are public, so the directory answers 409 `wrong-party` (not 404) and the
    refusal is recorded as such."""
    owner, intruder = make_organisation(), make_organisation()
    service = Service.objects.create(organisation=owner, name="Drop-in")
    response = api_client_for(intruder).patch(
        f"/api/v1/services/{service.pk}", {"name": "Mine now"}, format="json"
    )
    assert response.status_code == 409
    service.refresh_from_db()
    assert service.name == "Drop-in"
    (entry,) = AuditEntry.objects.all()
    assert (entry.action, entry.object_type, entry.object_id, entry.result) == (
        "PATCH service-detail",
        "service",
        str(service.pk),
        "409",
    )
    assert entry.actor_organisation == intruder.pk


def test_unknown_ids_are_recorded_like_other_organisations_objects(api_client_for, organisation):
    client = api_client_for(organisation)
    missing = "00000000-0000-4000-8000-000000000000"
    assert client.get(f"/api/v1/referrals/{missing}").status_code == 404
    assert client.patch(f"/api/v1/services/{missing}", {}, format="json").status_code == 404
    assert actions() == [
        ("denied GET referrals:detail", missing, "404"),
        ("denied PATCH service-detail", missing, "404"),
    ]


def test_created_objects_are_named_by_their_new_id(api_client_for, make_organisation):
    from tests.referrals.conftest import active_partnership, referral_payload

    sender, receiver = make_organisation(), make_organisation()
    active_partnership(sender, receiver)
    service = Service.objects.create(organisation=receiver, name="Clinic")
    response = api_client_for(sender).post(
        "/api/v1/referrals", referral_payload(receiver, service), format="json"
    )
    assert response.status_code == 201
    assert actions() == [("POST referrals:list", response.json()["id"], "201")]
    assert AuditEntry.objects.get().object_type == "referral"


def test_reads_a_rule_refuses_are_audited(api_client_for, make_organisation):
    """A receiver reading while the partnership is suspended is refused (409) and recorded, as
    every refusal is: a read that discloses nothing still shows who tried."""
    sender, receiver = make_organisation(), make_organisation()
    referral = make_referral(sender, receiver, canary="x")
    Partnership.objects.filter(pk=referral.partnership_id).update(
        status=PartnershipStatus.SUSPENDED
    )
    response = api_client_for(receiver).get(f"/api/v1/referrals/{referral.pk}")
    assert response.status_code == 409
    assert response.json()["type"].endswith("/partnership-suspended")
    assert actions() == [("GET referrals:detail", str(referral.pk), "409")]
    assert AuditEntry.objects.get().actor_organisation == receiver.pk
