"""Move what the consent row said in words out of plaintext, and clear dead claim codes.

Before this, `consent.recorded_by` and `consent.purpose` were free text that outlived the
personal data. For each consent:

- `purpose` becomes a code of ConsentPurpose, guessed from the words (first match below, else
  `other`); the words themselves become the `purpose_note`;
- while the referral still has its personal data, `recorded_by` and the note are encrypted under
  its data key as the `consent` group of PersonalData, to be shredded with the rest; where the
  data was already destroyed (or its key cannot be unwrapped, so it is unreadable anyway) they
  are not kept at all (migration 0003 drops the column);
- a `wording_version` that is not a version token becomes `0` (unknown).

Claim codes of closed referrals, and of referrals whose personal data is gone, become NULL.
Reversing it keeps the codes and the NULLs: the words are not restored."""

import re

from django.db import migrations, models

TERMINAL = ("declined", "completed", "cancelled", "expired")
WORDING_VERSION = re.compile(r"^v?[0-9]{1,8}([.-][0-9]{1,8}){0,3}$")
PURPOSE_WORDS = (
    ("contraception", r"contracep|birth control"),
    ("abortion-reproductive-care", r"abortion|reproducti|pregnan"),
    ("sexual-health", r"sexual|\bstis?\b|\bhiv\b|\bprep\b|\bpep\b"),
    ("mental-health", r"mental|counsel|psych"),
    ("harm-reduction", r"harm reduction|drug|needle|syringe|naloxone"),
    ("safe-reporting-violence", r"violen|assault|abuse"),
    ("legal-advice", r"legal|lawyer|immigration|asylum|court"),
    ("labour-rights", r"labou?r"),
    ("emergency-shelter", r"shelter|safe house"),
    ("housing", r"housing|accommodation"),
    ("food", r"\bfood"),
    ("financial-aid", r"financ|money|cash"),
    ("interpretation", r"interpret|translat"),
    ("peer-support", r"\bpeer"),
    ("general-health", r"health|clinic|medical|doctor"),
)


def purpose_code(words: str) -> str:
    lowered = words.lower()
    return next((code for code, pattern in PURPOSE_WORDS if re.search(pattern, lowered)), "other")


def forwards(apps, schema_editor):
    from referrals import crypto
    from referrals.selectors import data_key

    Consent = apps.get_model("referrals", "Consent")
    PersonalData = apps.get_model("referrals", "PersonalData")
    Referral = apps.get_model("referrals", "Referral")
    ReferralKey = apps.get_model("referrals", "ReferralKey")

    for consent in Consent.objects.select_related("referral").order_by("pk").iterator():
        referral = consent.referral
        words = consent.purpose
        key = ReferralKey.objects.filter(referral=referral).first()
        if referral.personal_data == "present" and key is not None:
            referral.key = key
            try:
                plain_key = data_key(referral)
            except crypto.KeyUnavailable:
                plain_key = None
            if plain_key is not None:
                group = {"recorded_by": consent.recorded_by, "purpose_note": words}
                PersonalData.objects.update_or_create(
                    referral=referral,
                    field="consent",
                    defaults={
                        "ciphertext": crypto.encrypt_field(plain_key, referral.pk, "consent", group)
                    },
                )
        consent.purpose = purpose_code(words)
        if not WORDING_VERSION.match(consent.wording_version):
            consent.wording_version = "0"
        consent.recorded_by = ""
        consent.save(update_fields=["purpose", "wording_version", "recorded_by"])

    Referral.objects.filter(
        models.Q(status__in=TERMINAL) | ~models.Q(personal_data="present")
    ).update(claim_code=None)


class Migration(migrations.Migration):
    dependencies = [
        ("referrals", "0002_key_epochs"),
    ]

    operations = [
        migrations.AlterField(
            model_name="referral",
            name="claim_code",
            field=models.CharField(blank=True, max_length=8, null=True, unique=True),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
