"""Reads for the partner directory. Every query that depends on who is asking takes the caller's
organisation explicitly, so scoping is visible at the call site."""

from django.db.models import Q

from partners.models import Organisation, Partnership, PartnershipStatus


def partnership_active_between(org_a: Organisation, org_b: Organisation) -> Partnership | None:
    """The active agreement between two organisations, whichever side proposed it, or None.
    Referrals and confidential locations are gated on this."""
    if org_a is None or org_b is None or org_a.pk == org_b.pk:
        return None
    return (
        Partnership.objects.filter(
            Q(proposer_id=org_a.pk, partner_id=org_b.pk)
            | Q(proposer_id=org_b.pk, partner_id=org_a.pk),
            status=PartnershipStatus.ACTIVE,
        )
        .order_by()
        .first()
    )
