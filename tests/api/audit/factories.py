"""Referrals written straight to the tables, so these tests do not depend on the referral
API. Personal fields hold the canary in their "ciphertext": if anything rendered or copied
ciphertext, the canary would show."""

import secrets
from datetime import timedelta

from django.utils import timezone

from partners.models import Partnership, PartnershipStatus, Service
from referrals.models import Consent, PersonalData, Referral, ReferralKey, ReferralNote


def make_referral(sender, receiver, *, canary="", status="requested", closed=None, **fields):
    now = timezone.now()
    service = Service.objects.filter(organisation=receiver).first() or Service.objects.create(
        organisation=receiver, name="Clinic hours"
    )
    partnership = Partnership.objects.filter(proposer=sender, partner=receiver).first()
    if partnership is None:
        partnership = Partnership.objects.create(
            proposer=sender,
            partner=receiver,
            status=PartnershipStatus.ACTIVE,
            data_categories=["contact", "health", "notes"],
            purposes=["care"],
        )
    referral = Referral.objects.create(
        sender=sender,
        receiver=receiver,
        service=service,
        partnership=partnership,
        urgency=fields.pop("urgency", "routine"),
        needs=fields.pop("needs", ["primary-care"]),
        respond_by=now + timedelta(days=3),
        status=status,
        claim_code=secrets.token_hex(4).upper(),
        created=fields.pop("created", now),
        updated=now,
        closed=closed,
        **fields,
    )
    Consent.objects.create(
        referral=referral,
        method="verbal",
        language="pt",
        given_at=now,
        purpose="general-health",
        data_categories=["contact", "health", "notes"],
        wording_version="v1",
        expires_at=now + timedelta(days=90),
    )
    ReferralKey.objects.create(referral=referral, kid="dev1", wrapped=b"wrapped-key")
    for field in ("person", "safe_contact", "contact"):
        PersonalData.objects.create(
            referral=referral, field=field, ciphertext=f"{field}:{canary}".encode()
        )
    ReferralNote.objects.create(
        referral=referral, author=sender, ciphertext=f"note:{canary}".encode(), created=now
    )
    return referral
