"""The consent row keeps codes only: no `recorded_by` column (it is in the encrypted `consent`
group now, see 0002), `purpose` a ConsentPurpose code and `wording_version` a version token,
both held by CHECK constraints because the referral insert is raw SQL."""

import django.core.validators
from django.db import migrations, models

PURPOSES = [
    ("sexual-health", "Sexual health"),
    ("contraception", "Contraception"),
    ("abortion-reproductive-care", "Abortion and reproductive care"),
    ("general-health", "General health"),
    ("mental-health", "Mental health"),
    ("harm-reduction", "Harm reduction"),
    ("legal-advice", "Legal advice"),
    ("labour-rights", "Labour rights"),
    ("safe-reporting-violence", "Reporting violence safely"),
    ("emergency-shelter", "Emergency shelter"),
    ("housing", "Housing"),
    ("food", "Food"),
    ("financial-aid", "Financial aid"),
    ("interpretation", "Interpretation"),
    ("peer-support", "Peer support"),
    ("other", "Other"),
]
WORDING_VERSION = "^v?[0-9]{1,8}([.-][0-9]{1,8}){0,3}$"


class Migration(migrations.Migration):
    dependencies = [
        ("referrals", "0003_consent_personal_fields_encrypted"),
    ]

    operations = [
        migrations.RemoveField(model_name="consent", name="recorded_by"),
        migrations.AlterField(
            model_name="consent",
            name="purpose",
            field=models.CharField(choices=PURPOSES, max_length=30),
        ),
        migrations.AlterField(
            model_name="consent",
            name="wording_version",
            field=models.CharField(
                max_length=20,
                validators=[
                    django.core.validators.RegexValidator(
                        WORDING_VERSION, "A version token such as 2026-10, v3 or 1.2."
                    )
                ],
            ),
        ),
        migrations.AddConstraint(
            model_name="consent",
            constraint=models.CheckConstraint(
                condition=models.Q(purpose__in=[code for code, _ in PURPOSES]),
                name="consent_purpose_code",
            ),
        ),
        migrations.AddConstraint(
            model_name="consent",
            constraint=models.CheckConstraint(
                condition=models.Q(wording_version__regex=WORDING_VERSION),
                name="consent_wording_version_token",
            ),
        ),
    ]
