"""Issue 12: the same ids have the same keys in every webhook payload. This walks every event
type's payload schema in the OpenAPI document: in `data`, `id` is the event's own id, and every
other id, however deep, is `<name>_id`, each name meaning one thing in every event."""

from collections import defaultdict

from api.events import EVENT_TYPES
from tests.api.test_openapi import generated, schema  # noqa: F401 (fixtures)

# Every id a payload names, by its key: what the description says it identifies.
ID_KEYS = {
    "referral_id": "The referral's id",
    "sender_id": "The sending organisation's id.",
    "receiver_id": "The receiving organisation's id.",
    "note_id": "The note's id",
    "organisation_id": "organisation's id.",
    "service_id": "The service's id.",
    "partnership_id": "The partnership's id.",
    "import_id": "The import job's id.",
    "webhook_endpoint_id": "The endpoint pinged.",
}


def ids_in(node: dict, path: str):
    """(path, key, schema) of every property that holds an id, at any depth."""
    for key, child in node.get("properties", {}).items():
        where = f"{path}.{key}"
        if child.get("format") == "uuid" or key == "id" or key.endswith("_id"):
            yield where, key, child
        yield from ids_in(child, where)
        if isinstance(child.get("items"), dict):
            yield from ids_in(child["items"], f"{where}[]")


def payloads(document) -> dict[str, dict]:
    components = document["components"]["schemas"]
    found = {}
    for event_type, item in document["webhooks"].items():
        ref = item["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        found[event_type] = components[ref.rsplit("/", 1)[1]]["properties"]["data"]
    return found


def test_every_event_type_is_walked(schema):  # noqa: F811
    assert set(payloads(schema)) == {*EVENT_TYPES, "ping"}


def test_every_id_is_named_for_what_it_identifies(schema):  # noqa: F811
    wrong = []
    for event_type, data in payloads(schema).items():
        assert data["properties"]["id"]["description"].startswith("The event's id"), event_type
        for where, key, child in ids_in(data, event_type):
            if where == f"{event_type}.id":
                continue
            if key not in ID_KEYS or child.get("format") != "uuid":
                wrong.append(where)
            elif ID_KEYS[key] not in child["description"]:
                wrong.append(f"{where}: {child['description']!r}")
    assert wrong == [], f"ids not named `<name>_id` as in every other payload: {wrong}"


def test_one_key_per_thing_across_events(schema):  # noqa: F811
    """The same description under two keys would be one id with two names."""
    keys_by_description = defaultdict(set)
    for event_type, data in payloads(schema).items():
        for where, key, child in ids_in(data, event_type):
            if where != f"{event_type}.id":
                keys_by_description[child.get("description")].add(key)
    assert {text: keys for text, keys in keys_by_description.items() if len(keys) > 1} == {}


def test_the_referral_events_name_the_referral_and_its_parties_alike(schema):  # noqa: F811
    for event_type, data in payloads(schema).items():
        if event_type.startswith("referral."):
            required = set(data["required"])
            assert {"referral_id", "sender_id", "receiver_id"} <= required, event_type
