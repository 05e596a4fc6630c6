from django.db import migrations

from partners.search import search_entry_refresh_sql


def refresh_function(apps, schema_editor):
    """Migration 0007's partners_searchentry_refresh, now built from partners.search with the
    search entry's columns at this point of the history: the same function, from one place."""
    entry = apps.get_model("partners", "SearchEntry")
    columns = [field.column for field in entry._meta.concrete_fields if not field.primary_key]
    schema_editor.execute(search_entry_refresh_sql(columns))


class Migration(migrations.Migration):
    dependencies = [
        ("partners", "0009_opening_hours"),
    ]

    # Undone, the function stays: it is the one it replaced, its columns listed in another order.
    operations = [migrations.RunPython(refresh_function, migrations.RunPython.noop)]
