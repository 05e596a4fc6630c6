import django.contrib.postgres.fields
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0004_merge_audit_webhooks"),
        ("partners", "0001_initial"),
        ("referrals", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Disclosure",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("client_id", models.CharField(max_length=100)),
                (
                    "categories",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=20), size=None
                    ),
                ),
                ("operation", models.CharField(max_length=40)),
                ("request_id", models.CharField(blank=True, max_length=128)),
                ("created", models.DateTimeField(auto_now_add=True)),
                (
                    "organisation",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="partners.organisation",
                    ),
                ),
                (
                    "referral",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="disclosures",
                        to="referrals.referral",
                    ),
                ),
            ],
            options={
                "ordering": ["-created", "-id"],
                "indexes": [
                    models.Index(
                        models.F("referral"),
                        models.OrderBy(models.F("created"), descending=True),
                        models.OrderBy(models.F("id"), descending=True),
                        name="disclosure_ref",
                    )
                ],
            },
        ),
    ]
