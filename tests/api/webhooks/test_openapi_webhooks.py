"""The OpenAPI document's `webhooks:` section: one entry and one payload schema per event type,
and a receiver's guide whose facts come from the delivery code and whose verification examples
(Python and JavaScript) accept a real signature and refuse a forged one."""

import json
import re
import shutil
import subprocess
import time
import uuid

import jsonschema
import pytest

from api.events import EVENT_TYPES
from api.webhooks import services, transport
from tests.api.test_openapi import generated, schema  # noqa: F401 (fixtures)

SECRET = transport.new_secret()


def guide(document) -> str:
    return next(tag for tag in document["tags"] if tag["name"] == "webhooks")["description"]


def code_block(text: str, language: str) -> str:
    return re.search(rf"```{language}\n(.*?)```", text, re.S).group(1)


def signed(body: bytes, secrets=(SECRET,)) -> dict:
    msg_id, timestamp = str(uuid.uuid4()), int(time.time())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": transport.signature_header(list(secrets), msg_id, timestamp, body),
    }


def test_one_entry_and_payload_schema_per_event_type(schema):  # noqa: F811
    webhooks = schema["webhooks"]
    assert set(webhooks) == {*EVENT_TYPES, "ping"}
    names = set()
    for event_type, entry in webhooks.items():
        operation = entry["post"]
        assert {p["name"] for p in operation["parameters"]} == {
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        }
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        names.add(ref)
        payload = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert payload["properties"]["type"]["const"] == event_type
        assert {"type", "timestamp", "sequence", "data"} <= set(payload["required"])
    assert len(names) == len(webhooks)


def test_the_guide_states_retries_disabling_ordering_and_loopback(schema):  # noqa: F811
    text = guide(schema)
    for phrase in ("5 s", "5 min", "30 min", "2 h", "24 h", f"{services.MAX_ATTEMPTS} attempts"):
        assert phrase in text, phrase
    assert "410 Gone" in text and f"{services.FAILING_LIMIT.days} days" in text
    assert "`sequence`" in text and "at least once" in text
    assert "ALLOW_LOOPBACK_WEBHOOKS" in text
    for header in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert header in text


def test_the_python_example_verifies_a_real_delivery(schema):  # noqa: F811
    namespace = {}
    exec(code_block(guide(schema), "python"), namespace)
    body = json.dumps({"type": "ping", "sequence": 1}).encode()
    assert namespace["verified"](SECRET, body, signed(body))["type"] == "ping"
    # During a rotation the header holds two signatures; either secret's suffices.
    assert namespace["verified"](SECRET, body, signed(body, (transport.new_secret(), SECRET)))
    with pytest.raises(Exception, match=r"(?i)signature"):
        namespace["verified"](SECRET, body + b" ", signed(body))


def test_the_javascript_example_verifies_a_real_delivery(schema, tmp_path):  # noqa: F811
    node = shutil.which("node")
    assert node, "Node.js runs the document's JavaScript example (it runs Spectral too)"
    body = json.dumps({"type": "ping", "sequence": 1})
    script = tmp_path / "verify.js"
    script.write_text(
        code_block(guide(schema), "javascript")
        + "\nconst [secret, body, headers] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        + "\ntry { console.log(JSON.stringify(verified(secret, body, headers))); }"
        + "\ncatch (error) { console.log('refused: ' + error.message); }\n"
    )

    def run(text, headers):
        stdin = json.dumps([SECRET, text, headers])
        result = subprocess.run(
            [node, script], input=stdin, capture_output=True, text=True, check=True, timeout=30
        )
        return result.stdout.strip()

    assert json.loads(run(body, signed(body.encode())))["type"] == "ping"
    assert run(body + " ", signed(body.encode())) == "refused: bad signature"
    stale = signed(body.encode()) | {"webhook-timestamp": "1000"}
    assert run(body, stale) == "refused: stale timestamp"


@pytest.mark.django_db
def test_a_real_payload_matches_its_schema(schema, make_organisation):  # noqa: F811
    """Events the services emit, rendered as deliveries are, validate against the document."""
    from api.models import Event
    from api.webhooks.models import WebhookDelivery
    from partners import services as partners

    proposer, partner = make_organisation("Collective"), make_organisation("Clinic")
    partnership = partners.partnership_propose(
        proposer=proposer, partner_id=partner.pk, data_categories=["contact"], purposes=["Care"]
    )
    partners.partnership_transition(partnership=partnership, organisation=partner, action="accept")
    events = list(Event.objects.filter(type="partnership.changed"))
    assert events
    for event in events:
        body = json.loads(services.payload(WebhookDelivery(event=event, sequence=1)))
        validate(schema, body)


def validate(document, body):
    name = f"{''.join(p.capitalize() for p in re.split('[._]', body['type']))}Event"
    resource = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    jsonschema.validate(body, resource, cls=jsonschema.Draft202012Validator)
