"""The schema states what the server enforces, so a generated client or validator catches a
mistake before the request is sent: unknown fields, empty lists, NUL characters, bounds; and a
400 only ever means "does not match the schema" (what a rule refuses is documented as 422)."""

import re

import pytest
import yaml
from django.conf import settings

from api.schema import NO_NUL_NOT_BLANK

DOCUMENT = yaml.safe_load((settings.BASE_DIR / "openapi" / "openapi.yaml").read_text())
SCHEMAS = DOCUMENT["components"]["schemas"]


def operations():
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def request_component(operation) -> str | None:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    return ref.rsplit("/", 1)[-1] or None


def test_every_json_request_body_refuses_unknown_fields():
    bodies = {name for _, _, op in operations() if (name := request_component(op))}
    assert len(bodies) > 15
    open_bodies = [
        name for name in bodies if SCHEMAS[name].get("additionalProperties") is not False
    ]
    assert open_bodies == []


def test_every_operation_with_input_documents_the_422_of_its_rules():
    missing = [
        (method, path)
        for path, method, operation in operations()
        if (operation.get("parameters") or operation.get("requestBody"))
        and "422" not in operation["responses"]
        # The token endpoint refuses with RFC 6749's 400 (invalid_scope…), never 422.
        and path != "/oauth/token"
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("component", "field", "bound"),
    [
        ("PatchedWebhookEndpointUpdateRequest", "event_types", {"minItems": 1}),
        ("WebhookEndpointCreateRequest", "event_types", {"minItems": 1}),
    ],
)
def test_list_bounds_are_stated(component, field, bound):
    schema = SCHEMAS[component]["properties"][field]
    assert bound.items() <= schema.items()


def test_free_text_in_bodies_says_it_cannot_hold_nul():
    name = SCHEMAS["ReferralNoteCreateRequest"]["properties"]["text"]
    assert name["pattern"] == NO_NUL_NOT_BLANK
    assert re.search(name["pattern"], "Call after six.")
    assert not re.search(name["pattern"], "Call\x00")


@pytest.mark.parametrize("blank", [" ", "\u00a0\t", "\u001d", "\u3000"])
def test_text_that_refuses_blanks_says_a_character_is_no_white_space(blank):
    """DRF trims text (str.strip), so white space only is blank: the pattern names exactly what
    str.strip removes, whatever a regex engine's own `\\s` means."""
    name = SCHEMAS["ReferralNoteCreateRequest"]["properties"]["text"]
    assert not blank.strip()
    assert not re.search(name["pattern"], blank)
    assert re.search(name["pattern"], "\ufeff"), "U+FEFF is no white space to str.strip"


def test_language_tags_and_time_zones_have_patterns():
    location = SCHEMAS["LocationWriteRequest"]["properties"]
    assert location["time_zone"]["pattern"].startswith("^[A-Za-z]")
    assert location["time_zone"]["maxLength"] == 64
    languages = SCHEMAS["PatchedOrganisationUpdateRequest"]["properties"]["languages"]
    assert languages["items"]["pattern"].startswith("^[A-Za-z]{2,3}")
