"""The person's words in the nine languages of the taxonomy: every catalog translates every
string the page and the status sentences use, and the committed .mo files (which make run and
make test use, so no gettext tools are needed) are exactly their .po files compiled. After
editing a .po, `make messages` rebuilds both."""

import ast
import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation
from django.utils.functional import Promise

from referrals import selectors
from referrals.me import forms, views

LOCALE = Path(settings.BASE_DIR) / "referrals" / "locale"
TEMPLATES = Path(settings.BASE_DIR) / "referrals" / "templates" / "me"
TRANSLATED = [code for code, _ in settings.LANGUAGES if code != settings.LANGUAGE_CODE]


def po_entries(path: Path) -> tuple[dict[str, str], list[str]]:
    """msgid -> msgstr of a .po file, and the flags of its entries."""
    entries, flags = {}, []
    msgid = msgstr = None
    target = None
    for line in [*path.read_text().splitlines(), ""]:
        if line.startswith("#,"):
            flags.append(line)
        elif line.startswith("msgid "):
            msgid, target = ast.literal_eval(line[6:]), "id"
        elif line.startswith("msgstr "):
            msgstr, target = ast.literal_eval(line[7:]), "str"
        elif line.startswith('"'):
            if target == "id":
                msgid += ast.literal_eval(line)
            else:
                msgstr += ast.literal_eval(line)
        elif not line.strip() and msgid is not None:
            entries[msgid] = msgstr
            msgid = msgstr = target = None
    return entries, flags


def used_strings() -> set[str]:
    """What the page and the statuses translate: template tags and lazy strings in code."""
    found = set()
    for template in TEMPLATES.glob("*.html"):
        found.update(re.findall(r"""{% translate ["']([^"']+)["'] %}""", template.read_text()))

    def collect(value):
        if isinstance(value, Promise):
            with translation.override(None):  # untranslated: the msgid itself
                found.add(str(value))
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, (tuple, list)):
            for item in value:
                collect(item)

    for module in (selectors, views, forms):
        for value in vars(module).values():
            collect(value)
    for form in (forms.SignInForm, forms.ChannelsForm):
        for field in form.base_fields.values():
            collect(field.label)
    return found


def test_the_strings_are_found():
    used = used_strings()
    assert "Leave now" in used and "Your request was sent. They have not answered yet." in used
    assert "Text message (SMS)" in used and "Done. They will not contact you." in used
    assert len(used) > 40


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_string_is_translated(language):
    path = LOCALE / language / "LC_MESSAGES" / "django.po"
    entries, flags = po_entries(path)
    assert not any("fuzzy" in flag for flag in flags), "fuzzy entries are not used"
    header = entries.pop("")
    assert f"Language: {language}" in header and "charset=UTF-8" in header
    missing = sorted(used_strings() - set(entries))
    assert not missing, f"{language}: not in the catalog: {missing}"
    empty = sorted(msgid for msgid, msgstr in entries.items() if not msgstr.strip())
    assert not empty, f"{language}: not translated: {empty}"
    unused = sorted(set(entries) - used_strings())
    assert not unused, f"{language}: no longer used: {unused}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_committed_mo_is_the_po_compiled(language):
    folder = LOCALE / language / "LC_MESSAGES"
    entries, _ = po_entries(folder / "django.po")
    entries.pop("")
    with (folder / "django.mo").open("rb") as compiled:
        catalog = dict(gettext.GNUTranslations(compiled)._catalog)
    catalog.pop("", None)
    assert catalog == entries, f"run `make messages`: {language}'s .mo is stale"


def test_all_nine_languages_of_the_taxonomy():
    from partners.selectors import TAXONOMY_LANGUAGES

    assert sorted(code for code, _ in settings.LANGUAGES) == sorted(TAXONOMY_LANGUAGES)
    assert sorted(path.name for path in LOCALE.iterdir()) == sorted(TRANSLATED)
