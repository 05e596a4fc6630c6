"""Idempotency keys: the fingerprint becomes an HMAC under a key derived from SECRET_KEY (of the
SHA-256 the rows held, so they convert in place and a retry within 24 hours still replays), and
each row names what its request created (`object_id`, from the stored answer's `id`) so it can
be deleted when that referral's personal data is destroyed."""

import uuid

from django.db import migrations, models
from django.utils.crypto import salted_hmac

# api.idempotency.FINGERPRINT_SALT as of this migration.
FINGERPRINT_SALT = "srn.api.idempotency.fingerprint"


def created_id(body):
    try:
        return uuid.UUID(str(body["id"]))
    except (TypeError, KeyError, ValueError):
        return None


def forwards(apps, schema_editor):
    IdempotencyKey = apps.get_model("api", "IdempotencyKey")
    for row in IdempotencyKey.objects.order_by("pk").iterator():
        row.request_fingerprint = salted_hmac(
            FINGERPRINT_SALT, row.request_fingerprint, algorithm="sha256"
        ).hexdigest()
        row.object_id = created_id(row.response_body)
        row.save(update_fields=["request_fingerprint", "object_id"])


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0005_disclosure"),
    ]

    operations = [
        migrations.AddField(
            model_name="idempotencykey",
            name="object_id",
            field=models.UUIDField(blank=True, db_index=True, null=True),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
