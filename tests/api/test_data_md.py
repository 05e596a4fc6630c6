"""docs/DATA.md must describe every field of every table the system holds: a model that gains
a field without a line in DATA.md fails here."""

import re
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings

DATA_MD = Path(settings.BASE_DIR) / "docs" / "DATA.md"
APPS = ("api", "partners", "referrals", "oauth2_provider", "admin", "auth", "sessions")


def sections() -> dict[str, str]:
    """Table name -> the text of its `### \\`table\\`` section."""
    text = DATA_MD.read_text()
    out = {}
    for match in re.finditer(r"^### `([a-z0-9_]+)`.*?$(.*?)(?=^##|\Z)", text, re.M | re.S):
        out[match.group(1)] = match.group(2)
    return out


def models():
    for label in APPS:
        for model in apps.get_app_config(label).get_models():
            if not model._meta.swapped:
                yield model


def fields(model):
    return [f.name for f in model._meta.concrete_fields] + [
        f.name for f in model._meta.many_to_many
    ]


def undocumented(table: str, names: list[str]) -> list[str]:
    documented = sections()
    assert table in documented, f"docs/DATA.md has no section for `{table}`"
    return [name for name in names if f"`{name}`" not in documented[table]]


@pytest.mark.parametrize("model", list(models()), ids=lambda m: m._meta.label)
def test_every_field_is_described(model):
    missing = undocumented(model._meta.db_table, fields(model))
    assert not missing, f"docs/DATA.md does not describe {model._meta.db_table}: {missing}"


def test_the_check_notices_a_new_field_or_table():
    assert undocumented("referrals_referral", ["claim_code", "immigration_status"]) == [
        "immigration_status"
    ]
    with pytest.raises(AssertionError, match="no section"):
        undocumented("referrals_passport", ["number"])


def test_no_section_for_a_table_that_does_not_exist():
    tables = {model._meta.db_table for model in models()}
    assert set(sections()) <= tables


def test_retention_and_compelled_disclosure_are_explained():
    text = DATA_MD.read_text()
    assert "what could be handed over if we were compelled" in text
    assert "Could not be handed over" in text
    assert "## Retention at a glance" in text
