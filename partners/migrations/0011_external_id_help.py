from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("partners", "0010_search_entry_refresh"),
    ]

    operations = [
        migrations.AlterField(
            model_name="organisation",
            name="external_id",
            field=models.CharField(
                blank=True,
                help_text="Its HSDS id in the directory it was imported from, so a second import updates it instead of adding a copy.",
                max_length=200,
            ),
        ),
        migrations.AlterField(
            model_name="service",
            name="external_id",
            field=models.CharField(
                blank=True,
                help_text="Its HSDS id in the directory it was imported from, so a second import updates it instead of adding a copy.",
                max_length=200,
            ),
        ),
    ]
