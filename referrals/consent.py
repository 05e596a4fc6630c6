"""What the person's consent lets through: the consent category each encrypted field group
needs, and the rule for notes. Both the reads (selectors) and the writes (services) apply it."""

from referrals.errors import NotConsented
from referrals.models import Referral

# Encrypted field groups and the consent category each needs (None: part of every referral).
FIELD_CATEGORIES: dict[str, str | None] = {
    "person": None,
    "safe_contact": None,
    "reason": None,
    "contact": "contact",
    "health": "health",
    "legal": "legal",
    "decline_note": None,
    "consent": None,
}


def ensure_notes_consented(referral: Referral) -> None:
    if "notes" not in referral.consent.data_categories:
        raise NotConsented(
            "The person did not consent to notes being exchanged about this referral."
        )
