from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0003_audit"),
        ("api", "0003_webhooks"),
    ]

    operations = []
