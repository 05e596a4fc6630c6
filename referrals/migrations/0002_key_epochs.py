from django.db import migrations, models

# Ciphertexts and wrapped keys stay out of planner statistics: ANALYZE would copy samples of
# them into pg_statistic, where no deletion by the application reaches (they are unreadable
# once their keys are destroyed anyway; this keeps copies from spreading). Changing a column to
# its own type drops the statistics already gathered, without rewriting the table, and needs
# only ownership of the table, not superuser rights as deleting from pg_statistic would.
ENCRYPTED_COLUMNS = (
    ("referrals_personaldata", "ciphertext"),
    ("referrals_referralnote", "ciphertext"),
    ("referrals_referralkey", "wrapped"),
)


class Migration(migrations.Migration):
    dependencies = [
        ("referrals", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="KeyEpoch",
            fields=[
                ("id", models.PositiveIntegerField(primary_key=True, serialize=False)),
                ("created", models.DateTimeField()),
                ("retired", models.DateTimeField(blank=True, null=True)),
                ("destroyed", models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.AddField(
            model_name="referralkey",
            name="epoch",
            field=models.PositiveIntegerField(db_index=True, null=True),
        ),
        migrations.AlterField(
            model_name="referralkey",
            name="kid",
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.RunSQL(
            sql=[
                f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET STATISTICS 0, '
                f'ALTER COLUMN "{column}" TYPE bytea'
                for table, column in ENCRYPTED_COLUMNS
            ],
            reverse_sql=[
                f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET STATISTICS -1'
                for table, column in ENCRYPTED_COLUMNS
            ],
        ),
    ]
